/*
 * srs.h - the Sender Rewriting Scheme: envelope senders of forwarded mail,
 * and the bounces that come back to them.  Pure functions: no I/O, no
 * allocation, no globals; the secret and the time are passed in.
 *
 * When mail from an outside sender is forwarded to an outside address,
 * its envelope sender becomes an address at one of our domains that only
 * we can have made, and that leads back to the sender:
 *
 *	alice@example.org		(forwarded by us, as forward.test)
 *	SRS0=HHHH=TT=example.org=alice@forward.test
 *
 *	SRS0=HHHH=TT=example.org=alice@first.test	(forwarded again by us)
 *	SRS1=GGGG=first.test==HHHH=TT=example.org=alice@forward.test
 *
 * SRS0: HHHH signs TT, the domain and the local part; TT is the day it was
 * made.  SRS1: a sender that is already SRS0 is not wrapped a second time
 * (the address would grow with every hop); its domain, the first domain,
 * moves into the local part, and GGGG signs the first domain and the
 * SRS0 local part after its "SRS0" tag (the separator included).  A bounce
 * to the SRS1 address comes back to us and goes to the SRS0 address at the
 * first domain, which checks its own signature and time.  An SRS1 sender
 * forwarded again stays SRS1: same first domain, same inner part, a new
 * signature of ours.
 *
 * The formats and what is signed are those of the SRS paper (Shevek, 2004)
 * and of libsrs2 and postsrsd, so an address made by one verifies with the
 * other under the same secret:
 *   - hash: HMAC-SHA1 keyed with the secret, over the pieces concatenated
 *     with nothing between them and lowercased (ASCII only), so that an
 *     address some MTA lowercased still verifies; then base64, the first
 *     SRS_HASH_LEN characters.  Compared without case.  With nothing
 *     between the pieces, a signature also holds for the same bytes cut
 *     elsewhere between domain and local part ("example.com", "alice" and
 *     "example.co", "malice"): it leads only to an address that anyone
 *     who can have senders signed could have had signed, and is the price
 *     of verifying libsrs2's addresses.
 *   - timestamp: days since the Unix epoch modulo 1024, two characters of
 *     "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", decoded without case.  It is good
 *     for SRS_MAX_AGE_DAYS days after the day it names, counted modulo
 *     1024 as libsrs2 does, and for SRS_FUTURE_DAYS days before it, for a
 *     clock that was set back; anything else is expired.
 *   - the tags "SRS0" and "SRS1" are matched without case, and the
 *     separator after them may be '=', '+' or '-'; ours is always '='.
 *     The separators inside are always '='.  The separator an SRS0 sender
 *     had after its tag is part of the inner part of its SRS1 address, and
 *     comes back as it was.
 *   - the SRS0 pieces are read from the left: hash, timestamp, domain up to
 *     the next '=' (a domain never holds one), and the rest is the local
 *     part, which may hold '='.  SRS1 alike: hash, first domain, rest.
 *
 * What is accepted, beyond the scheme:
 *   - Local parts (the sender's, and an SRS address's): at least one octet,
 *     each an RFC 5322 atext character, '.', or an octet >= 0x80 (UTF-8).
 *     So no CR, LF, NUL, space, control character, '@', '"' or '\\': a
 *     quoted local part cannot be carried unquoted inside another, and is
 *     refused.  Domains: at least one octet, each a letter, digit, '-',
 *     '.', '_' or an octet >= 0x80; so no '=' and no address literal.
 *   - Hashes we check are SRS_HASH_LEN characters exactly; the hash of an
 *     SRS1 sender from elsewhere, which we do not check, any length >= 1.
 *   - An address, its local part and '@' and domain, is at most
 *     SRS_ADDR_MAX octets; longer input or output is refused, never cut.
 *     SRS addresses are often longer than RFC 5321's 64 octets for a local
 *     part, and that is not refused.
 *   - A buffer of SRS_ADDR_MAX + 1 bytes holds every result; a smaller one
 *     that cannot hold a result gives SRS_NO_SPACE.
 *
 * On any status but SRS_OK, out holds "" (when outlen > 0).  out must not
 * overlap the inputs.
 */
#ifndef UMBOX_ALIASES_SRS_H
#define UMBOX_ALIASES_SRS_H

#include <stddef.h>
#include <stdint.h>

#define SRS_ADDR_MAX		512	/* octets in an address, no NUL */
#define SRS_MAX_AGE_DAYS	21	/* a timestamp's days of validity */
#define SRS_FUTURE_DAYS		1	/* days ahead a timestamp may be */
#define SRS_HASH_LEN		4	/* base64 characters of the HMAC */

enum srs_status {
	SRS_OK = 0,
	SRS_NOT_SRS,		/* no SRS0/SRS1 tag: an ordinary address */
	SRS_BAD_SYNTAX,		/* malformed address, or one SRS cannot carry */
	SRS_BAD_HASH,		/* the signature does not match: forged or damaged */
	SRS_EXPIRED,		/* timestamp too old, or too far ahead */
	SRS_TOO_LONG,		/* input or result longer than SRS_ADDR_MAX */
	SRS_NO_SPACE,		/* the result does not fit in outlen */
	SRS_NO_SECRET,		/* empty secret: SRS is off */
	SRS_CRYPTO,		/* the HMAC could not be computed */
};

/*
 * The envelope sender for mail from sender ("local@domain", NUL-terminated;
 * the domain after its last '@') forwarded by us as alias_domain, made at
 * now (Unix seconds), into out:
 *	an ordinary sender	SRS0=HHHH=TT=domain=local@alias_domain
 *	SRS0<sep>rest@first	SRS1=GGGG=first=<sep>rest@alias_domain
 *	SRS1<sep>H=first=rest@x	SRS1=GGGG=first=rest@alias_domain
 * An SRS0 sender must have something after its separator, and an SRS1
 * sender a hash, a first domain and a rest that starts with a separator
 * and goes on; neither is checked further (their signatures are not ours).
 * The null sender is never rewritten: "" is SRS_BAD_SYNTAX, and so is a
 * sender without '@'.  An empty secret gives SRS_NO_SECRET.
 */
enum srs_status srs_forward(const char *secret, size_t secretlen,
    const char *sender, const char *alias_domain, int64_t now,
    char *out, size_t outlen);

/*
 * Where mail to local[0..locallen) at one of our domains goes back to,
 * when local is an SRS address that we signed (no NUL terminator needed,
 * no '@' and no domain): for SRS0, "local@domain" once its hash and
 * timestamp check at now; for SRS1, "SRS0<sep>rest@first" once its hash
 * checks (the first domain checks the rest).  SRS_NOT_SRS when local has
 * no SRS tag (srs_is_srs), whatever the secret; with one, SRS_TOO_LONG
 * past SRS_ADDR_MAX octets, then SRS_NO_SECRET when the secret is empty.
 * Of the other refusals, syntax comes first, then the hash, then the
 * time, so a forged address is SRS_BAD_HASH however old its stamp.
 */
enum srs_status srs_reverse(const char *secret, size_t secretlen,
    const char *local, size_t locallen, int64_t now, char *out, size_t outlen);

/*
 * Whether local[0..len) starts with "SRS0" or "SRS1", in any case, and a
 * separator ('=', '+' or '-'): an address srs_reverse() must judge rather
 * than one for a mailbox or alias.
 */
int srs_is_srs(const char *local, size_t len);

/* What a status means, for logs and replies: "bad signature"; never NULL. */
const char *srs_status_str(enum srs_status s);

#endif
