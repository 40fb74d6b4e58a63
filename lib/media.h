/*
 * media.h - readers for the media a voice mailbox and a fax mailbox hold:
 * the header of a WAVE file (wav.c) and the page chain of a TIFF file
 * (tiff.c).  Pure functions over (bytes, length, limits): no I/O, no
 * allocation, no globals.  Both say whether a file is one we can play or
 * count, and if not, why, in a sentence fit for a log or a bounce.
 *
 * Every offset and size in these files is the sender's; they are checked
 * in 64-bit arithmetic against the length given, and nothing is read
 * outside [buf, buf + len).
 */
#ifndef UMBOX_LIB_MEDIA_H
#define UMBOX_LIB_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#define MEDIA_MAX_SECONDS_DEFAULT	3600	/* one hour of voicemail */
#define MEDIA_MAX_PAGES_DEFAULT		1000
#define MEDIA_ERR_MAX			128	/* a good size for err */

#define WAV_MAX_CHANNELS	2
#define WAV_MAX_RATE		192000

/* WAVE format tags we read (the fmt chunk's wFormatTag). */
#define WAV_FORMAT_PCM		0x0001
#define WAV_FORMAT_ALAW		0x0006
#define WAV_FORMAT_MULAW	0x0007
#define WAV_FORMAT_GSM610	0x0031

/* GSM 6.10 as WAV49 packs two 160-sample frames into 65 bytes. */
#define WAV_GSM_BLOCK_ALIGN	65
#define WAV_GSM_BLOCK_SAMPLES	320

/*
 * What the caller accepts.  A NULL pointer, or a field of 0, means the
 * default above; there is no "unlimited".
 */
struct media_limits {
	unsigned max_seconds;	/* longest recording, in seconds */
	unsigned max_pages;	/* most pages in a fax */
};

struct wav_info {
	unsigned format;	/* WAV_FORMAT_* */
	unsigned channels;	/* 1..WAV_MAX_CHANNELS */
	unsigned rate;		/* samples per second, 1..WAV_MAX_RATE */
	unsigned bits;		/* per sample: 8 or 16 for PCM, 8 for the
				   laws, as the header says for GSM (often 0) */
	unsigned block_align;	/* bytes per sample frame, 65 for GSM */
	uint64_t data_len;	/* the data chunk's size in bytes */
	uint64_t samples;	/* sample frames (per channel) */
	unsigned seconds;	/* duration, rounded half up: 3.5 s gives 4 */
	uint64_t millis;	/* duration in ms, rounded half up */
};

/*
 * Read the header of a RIFF/WAVE file buf[0..len).  Returns 0 and fills
 * *out, or -1 with *out zeroed and a sentence in err (always
 * NUL-terminated when errlen > 0; MEDIA_ERR_MAX is enough).
 *
 * A file is complete, and accepted, when:
 *   - it starts "RIFF" <size> "WAVE" and the RIFF size fits in the file
 *     (bytes after the RIFF are ignored: trailing garbage is tolerated,
 *     a RIFF that claims more than the file holds is refused, so a cut
 *     file never passes);
 *   - every chunk inside the RIFF fits in it; chunks may come in any
 *     order, an odd-sized chunk is followed by a pad byte (which may be
 *     missing at the very end), unknown chunks are skipped, and a piece
 *     of a chunk header at the end is an error;
 *   - there is exactly one "fmt " chunk of at least 16 bytes and one
 *     "data" chunk; a "fact" chunk (at most one) is read for GSM 6.10,
 *     where it must hold 4 bytes, and skipped for the others;
 *   - the format is PCM with 8 or 16 bits, u-law or A-law with 8 bits, or
 *     mono GSM 6.10 with a block align of 65; PCM and the laws must have
 *     the block align their channels and bits imply; 1 or 2 channels;
 *     a rate of 1..192000;
 *   - it lasts at most lim->max_seconds (compared in milliseconds).
 *
 * The duration: PCM and the laws have data_len / block_align sample
 * frames (a partial frame at the end is not counted); GSM 6.10 has the
 * fact chunk's sample count, which may not exceed 320 per whole or
 * partial 65-byte block, or without a fact chunk 320 per whole block.
 */
int wav_parse(const void *buf, size_t len, const struct media_limits *lim,
    struct wav_info *out, char *err, size_t errlen);

/* "PCM", "u-law", "A-law", "GSM 6.10", a few others we name when
   refusing them ("MPEG", "IEEE float", ...), or "unknown"; never NULL. */
const char *wav_format_name(unsigned format);

struct tiff_info {
	unsigned pages;		/* IFDs in the chain, 1..max_pages */
	unsigned width;		/* the first page's ImageWidth (256), or 0 */
	unsigned length;	/* the first page's ImageLength (257), or 0 */
};

/*
 * Count the pages of a TIFF file buf[0..len): "II" or "MM", 42, the
 * first IFD's offset, then the chain of IFDs, each a 2-byte entry count,
 * that many 12-byte entries and a 4-byte offset of the next (0 ends).
 * Returns 0 and fills *out, or -1 with *out zeroed and a sentence in err.
 *
 * A file is complete when every IFD of the chain lies wholly inside it
 * (at offset 8 or later, with at least one entry).  What the entries
 * point to (strips, long values) is not checked.  A chain that comes
 * back to an IFD seen before is refused as a loop; it is found within
 * about twice its length, so a loop longer than half the page limit may
 * be refused as too many pages instead.  Offsets need not be even.
 * ImageWidth and ImageLength are taken when SHORT or LONG with count 1.
 */
int tiff_parse(const void *buf, size_t len, const struct media_limits *lim,
    struct tiff_info *out, char *err, size_t errlen);

#endif
