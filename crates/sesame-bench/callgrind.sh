#!/usr/bin/env bash
# Instruction counts of the login path under callgrind (docs/benchmarks.md, "Instruction
# counts"): the server's instructions for one OPAQUE login over HTTP (start + finish +
# session) and for the bare server login work (the same sesame-proto calls, no HTTP or store).
#
#   cargo build --release -p sesame-cli -p sesame-bench
#   crates/sesame-bench/callgrind.sh [OUT_DIR]        # default: target/callgrind
#
# HTTP: `sesame serve` runs under callgrind; sesame-login-count registers one account, warms
# up, then zeroes the counters, runs N1 logins one after the other and dumps, and does the
# same with N2. One login = (dump(N2) - dump(N1)) / (N2 - N1): startup, warm-up and idle work
# cancel. Bare: only sesame_bench::count::server_start/server_finish are collected
# (--toggle-collect), over N1 and N2 logins, differenced the same way.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${BIN_DIR:-$root/target/release}
out=${1:-$root/target/callgrind}
n1=${N1:-20}
n2=${N2:-60}
mkdir -p "$out"
rm -f "$out"/callgrind.out.* "$out"/*.txt

for tool in valgrind callgrind_control callgrind_annotate; do
  command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool not found" >&2; exit 1; }
done
for b in sesame sesame-login-count; do
  [ -x "$bin/$b" ] || { echo "callgrind.sh: build $bin/$b first (cargo build --release -p sesame-cli -p sesame-bench)" >&2; exit 1; }
done

# The wrapper the load generator starts as its `sesame` binary: exec keeps the pid.
wrapper="$out/sesame-under-callgrind"
cat >"$wrapper" <<WRAP
#!/usr/bin/env bash
exec valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.http.%p" "$bin/sesame" "\$@"
WRAP
chmod +x "$wrapper"

# The total instruction count (Ir) of one callgrind output file.
total() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }

echo "== HTTP: $n1 and $n2 logins against sesame serve under callgrind"
"$bin/sesame-login-count" http --sesame-bin "$wrapper" --logins "$n1,$n2" | tee "$out/http-run.txt"
pid=$(awk '/^server pid/ { print $3 }' "$out/http-run.txt")
# Dumps are numbered in order: .1 after N1 logins, .2 after N2 (the final one at exit is last).
h1=$(ls "$out"/callgrind.out.http."$pid".1)
h2=$(ls "$out"/callgrind.out.http."$pid".2)

echo "== bare: $n1 and $n2 logins, server steps only"
for n in "$n1" "$n2"; do
  valgrind --tool=callgrind --collect-atstart=no \
    --toggle-collect='*count::server_start*' --toggle-collect='*count::server_finish*' \
    --callgrind-out-file="$out/callgrind.out.bare.$n" \
    "$bin/sesame-login-count" bare --logins "$n" 2>"$out/bare-$n.log"
done

http=$(( ($(total "$h2") - $(total "$h1")) / (n2 - n1) ))
bare=$(( ($(total "$out/callgrind.out.bare.$n2") - $(total "$out/callgrind.out.bare.$n1")) / (n2 - n1) ))
{
  echo "server instructions per HTTP OPAQUE login (start + finish + session): $http"
  echo "bare server login work (sesame-proto start/finish + seal):             $bare"
  awk -v h="$http" -v b="$bare" 'BEGIN { printf "ratio HTTP / bare: %.2fx\n", h / b }'
} | tee "$out/summary.txt"

# Full listings (a pipe into head would end the script early under pipefail).
callgrind_annotate --inclusive=yes "$h2" >"$out/http-inclusive.txt" 2>/dev/null
callgrind_annotate --inclusive=yes "$out/callgrind.out.bare.$n2" >"$out/bare-inclusive.txt" 2>/dev/null
# Inclusive cost of the server's own frames, without the runtime's and the recursion's.
grep -E '(sesame_server|sesame_proto|sqlx|hyper|axum|serde_json|opaque_ke|jsonwebtoken|ed25519|libsqlite3|sqlite3)' \
  "$out/http-inclusive.txt" | grep -v "'2" | head -40 >"$out/http-top.txt" || true
echo "top functions: $out/http-top.txt (filtered), $out/http-inclusive.txt, $out/bare-inclusive.txt"
