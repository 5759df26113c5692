. "$(dirname "$0")/lib.sh"
start_mosquitto
start_sim --zones 3 --backlog 2000 --backlog-span 4m
cfg_head "$T/cfg.yaml"
cat >>"$T/cfg.yaml" <<CFG
rules:
  - name: all
    when: {kind: any}
    to: [{mqtt: home, topic: "e2e/{{kind}}/{{zone.id}}"}]
CFG
start_sub 'e2e/#'
t0=$(date +%s%N)
start_bridge "$T/cfg.yaml"
for i in $(seq 1 60); do sleep 0.1; echo "$(( ($(date +%s%N)-t0)/1000000 ))ms $(sub_count)"; done | awk '{print}' | uniq -f1 | head -40
sim_get /_sim/stats
cat $T/bridge.log
