# `tether-bridge check` warns about a config that loads but will do little or nothing: no
# rules, a target no rule names, a text template a json webhook never sends, a state_dir this
# user cannot write. Each warning is marked `warning:`, sits at its line, and check exits 0.
. "$(dirname "$0")/lib.sh"
head='tether: {base_url: "http://127.0.0.1:9", insecure: true, access_token: test}'

# no rules at all
printf '%s\nstate_dir: %s\nmqtt: {home: {url: "mqtt://127.0.0.1:1883"}}\n' "$head" "$T/s1" >"$T/none.yaml"
out=$("$BRIDGE" check -c "$T/none.yaml") || fail "no rules: check failed: $out"
want="$T/none.yaml: warning: no rules: nothing will be delivered
$T/none.yaml: ok: 1 mqtt broker, 0 webhooks, poll every 10s over all zones, 0 rules, 1 warning"
[ "$out" = "$want" ] || fail "no rules: got
$out"

# an unused webhook, a text on a json webhook, a state_dir under a regular file
: >"$T/afile"
cat >"$T/warn.yaml" <<CONF
$head
state_dir: $T/afile/state
mqtt: {home: {url: "mqtt://127.0.0.1:1883"}}
webhooks:
  spare: {url: "http://127.0.0.1:9/a", format: slack}
  plain: {url: "http://127.0.0.1:9/b", format: json}
rules:
  - name: a
    to:
      - mqtt: home
      - webhook: plain
        text: "{{zone.name}}"
CONF
out=$("$BRIDGE" check -c "$T/warn.yaml" 2>"$T/err") || fail "warnings: check failed: $out"
[ -s "$T/err" ] && fail "warnings: stderr: $(cat "$T/err")"
want="$T/warn.yaml:2:12: warning: state_dir '$T/afile/state' is not writable by uid $(id -u): '$T/afile': not a directory
$T/warn.yaml:5:3: warning: webhook 'spare' is used by no rule
$T/warn.yaml:12:9: warning: 'text' is never sent: webhook 'plain' has format json (only slack, discord and teams send a text; use 'body')"
got=$(printf '%s\n' "$out" | grep ': warning: ')
[ "$got" = "$want" ] || fail "warnings: want
$want
got
$got"
case "$out" in *", 3 warnings") ;; *) fail "warnings: no count in the summary: $out" ;; esac

# a config with nothing to warn about says so with no warning
cat >"$T/clean.yaml" <<CONF
$head
state_dir: $T/s2
mqtt: {home: {url: "mqtt://127.0.0.1:1883"}}
rules:
  - name: a
    to: [{mqtt: home}]
CONF
out=$("$BRIDGE" check -c "$T/clean.yaml") || fail "clean: check failed: $out"
printf '%s\n' "$out" | grep -q ': warning: \|, [0-9]* warnings\?$' && fail "clean: $out"
ok "check warns without failing"
