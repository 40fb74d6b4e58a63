# bench/stores.sh - sourced by bench/smtp-ingest and bench/pop3-drain:
# the options that say which stores umbox runs on, another way to set
# STORES (which they override):
#   --backend sqlite             STORES=sqlite
#   --backend postgresql         beside SQLite, PostgreSQL with --nodes
#   --nodes 1 | 2 | 1,2          one node (pg), two nodes (pg2), or both
bench_stores_args() {
	local backend= nodes= n
	while [ $# -gt 0 ]; do
		case "$1" in
		--backend|--nodes)
			[ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; }
			if [ "$1" = --backend ]; then backend=$2; else nodes=$2; fi
			shift 2 ;;
		*)
			echo "usage: $0 [--backend sqlite|postgresql [--nodes 1|2|1,2]]" >&2
			exit 2 ;;
		esac
	done
	case "$backend" in
	"") [ -z "$nodes" ] || { echo "$0: --nodes goes with --backend postgresql" >&2; exit 2; } ;;
	sqlite)
		[ -z "$nodes" ] || { echo "$0: --nodes goes with --backend postgresql" >&2; exit 2; }
		STORES=sqlite ;;
	postgresql)
		STORES=sqlite
		for n in $(tr , ' ' <<<"${nodes:-1}"); do
			case "$n" in
			1) STORES+=,pg ;;
			2) STORES+=,pg2 ;;
			*) echo "$0: --nodes takes 1, 2 or 1,2, not $n" >&2; exit 2 ;;
			esac
		done ;;
	*) echo "$0: --backend is sqlite or postgresql, not $backend" >&2; exit 2 ;;
	esac
}
