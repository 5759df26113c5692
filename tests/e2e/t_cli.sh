# Command-line conventions: --version/-V, -h/--help globally and per command on stdout with
# exit 0, options before or after the command, results on stdout and errors on stderr, exit
# codes 0/1/2, and `auth exchange` taking the whole redirect URL with its state checked.
. "$(dirname "$0")/lib.sh"

# run EXPECTED_RC ARGS...: runs the bridge, stdout in $T/out, stderr in $T/err
run() {
	want=$1
	shift
	"$BRIDGE" "$@" >"$T/out" 2>"$T/err"
	got=$?
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, want $want; stderr: $(cat "$T/err")"
}
no_stderr() { [ -s "$T/err" ] && fail "'$1' wrote to stderr: $(cat "$T/err")"; return 0; }
no_stdout() { [ -s "$T/out" ] && fail "'$1' wrote to stdout: $(cat "$T/out")"; return 0; }

for v in --version -V version; do
	run 0 $v
	grep -qE '^tether-bridge [0-9]+\.[0-9]+\.[0-9]+$' "$T/out" || fail "$v printed '$(cat "$T/out")'"
	no_stderr "$v"
done
ok "--version, -V and version print the version on stdout"

for h in --help -h help; do
	run 0 $h
	grep -q '^commands:' "$T/out" || fail "$h: no command list"
	no_stderr "$h"
done
# every command named in the global help has its own --help, on stdout, exit 0
cmds=$(sed -n '/^commands:/,/^$/p' "$T/out" | awk '/^  [a-z]/ { print $1 }' | sort -u)
[ "$(echo "$cmds" | wc -l)" -ge 7 ] || fail "too few commands in --help: $cmds"
for c in $cmds; do
	for h in --help -h; do
		run 0 $c $h
		head -n 1 "$T/out" | grep -qE "^usage: tether-bridge (\[$c\]|$c)( |$)" ||
			fail "'$c $h' printed '$(head -n 1 "$T/out")'"
		no_stderr "$c $h"
	done
	run 0 help $c
	head -n 1 "$T/out" | grep -q "tether-bridge.*$c" || fail "'help $c' printed '$(head -n 1 "$T/out")'"
done
run 0 auth exchange --help
grep -q 'REDIRECT_URL' "$T/out" || fail "auth exchange --help is not auth's usage"
ok "per-command help for: $(echo $cmds)"

# options before or after the command, in both spellings
cat >"$T/cfg.yaml" <<CFG
tether: {base_url: "http://127.0.0.1:1", insecure: true, access_token: t}
state_dir: $T/state
mqtt:
  home: {url: "mqtt://127.0.0.1:1"}
rules:
  - name: all
    when: {kind: any}
    to: [{mqtt: home, topic: x}]
CFG
run 0 -c "$T/cfg.yaml" check
first=$(cat "$T/out")
no_stderr "-c FILE check"
case "$first" in "$T/cfg.yaml: ok"*) ;; *) fail "check printed '$first'" ;; esac
for form in "check -c $T/cfg.yaml" "check --config $T/cfg.yaml" "--config=$T/cfg.yaml check"; do
	# shellcheck disable=SC2086
	run 0 $form
	[ "$(cat "$T/out")" = "$first" ] || fail "'$form' printed '$(cat "$T/out")'"
done
ok "global options before or after the command"

# a config error: exit 1; check's report (FILE:LINE:COL lines) is its result, on stdout,
# the count on stderr; other commands print the same lines on stderr
printf 'tether: {base_url: 1}\nbogus: 2\n' >"$T/bad.yaml"
run 1 check -c "$T/bad.yaml"
grep -q "^$T/bad.yaml:2:1: " "$T/out" || fail "no positioned error on stdout: $(cat "$T/out")"
grep -q "errors\?$" "$T/err" || fail "no error count on stderr: $(cat "$T/err")"
run 1 auth url -c "$T/bad.yaml"
no_stdout "auth url on a bad config"
grep -q "^$T/bad.yaml:2:1: " "$T/err" || fail "no positioned error on stderr: $(cat "$T/err")"
run 1 check -c "$T/missing.yaml"
grep -q "missing.yaml" "$T/out" || fail "missing file not named: $(cat "$T/out")"
ok "config errors exit 1"

# usage errors: exit 2, nothing on stdout, the message and a pointer to --help on stderr
for bad in "chek" "check extra" "check --zones z.json" "dlq --now 2h list" "--bogus" \
	"explain" "auth" "auth exchange" "run extra" "help nosuch"; do
	# shellcheck disable=SC2086
	run 2 $bad -c "$T/cfg.yaml"
	no_stdout "$bad"
	grep -q "^tether-bridge: \|unrecognized option" "$T/err" || fail "'$bad': no message: $(cat "$T/err")"
	grep -q "Try 'tether-bridge" "$T/err" || fail "'$bad': no pointer to --help: $(cat "$T/err")"
done
ok "usage errors exit 2 with the message on stderr"

# auth: url on stdout with a state; exchange takes the redirect URL and checks its state
start_sim --zones 1
cat >"$T/auth.yaml" <<CFG
tether:
  base_url: "$SIM_URL"
  insecure: true
  client_id: sim-client
  client_secret: sim-secret
  redirect_uri: http://127.0.0.1/callback
state_dir: $T/astate
CFG
redirect() { curl -s -o /dev/null -w '%{redirect_url}' "$1"; }
run 0 auth url -c "$T/auth.yaml"
no_stderr "auth url"
URL1=$(cat "$T/out")
case "$URL1" in *"&state="*) ;; *) fail "no state in '$URL1'" ;; esac
LOC1=$(redirect "$URL1")
run 0 -c "$T/auth.yaml" auth url
URL2=$(cat "$T/out")
[ "${URL1##*state=}" != "${URL2##*state=}" ] || fail "two 'auth url' gave the same state"
LOC2=$(redirect "$URL2")
# the first redirect answers an older request: refused, nothing exchanged
run 1 auth exchange "$LOC1" -c "$T/auth.yaml"
no_stdout "auth exchange (mismatch)"
grep -q "state mismatch" "$T/err" || fail "mismatch not explained: $(cat "$T/err")"
[ -e "$T/astate/token.json" ] && fail "a mismatched redirect was exchanged"
# a redirect carrying an error
run 1 auth exchange "http://127.0.0.1/callback?error=access_denied&error_description=the+user+said+no" -c "$T/auth.yaml"
grep -q "refused: access_denied: the user said no" "$T/err" || fail "error redirect: $(cat "$T/err")"
run 0 auth exchange "$LOC2" -c "$T/auth.yaml"
grep -q "^token saved in $T/astate/token.json$" "$T/out" || fail "exchange printed '$(cat "$T/out")'"
no_stderr "auth exchange URL"
[ -e "$T/astate/oauth-state" ] && fail "the state outlived its exchange"
# the same redirect again: no authorisation pending any more
run 1 auth exchange "$LOC2" -c "$T/auth.yaml"
grep -q "no authorisation pending" "$T/err" || fail "replayed redirect: $(cat "$T/err")"
# a bare code needs no state
run 0 auth url -c "$T/auth.yaml"
LOC3=$(redirect "$(cat "$T/out")")
CODE=${LOC3##*code=}
CODE=${CODE%%&*}
rm -f "$T/astate/oauth-state"
run 0 auth exchange "$CODE" -c "$T/auth.yaml"
ok "auth exchange: redirect URL with its state checked, or a bare code"
run 0 auth refresh -c "$T/auth.yaml"
grep -qE '^token refreshed, expires at [0-9-]+T[0-9:]+Z$' "$T/out" || fail "refresh printed '$(cat "$T/out")'"
no_stderr "auth refresh"
ok "auth refresh prints its result on stdout"
