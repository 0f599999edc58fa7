#!/usr/bin/env bash
# system-agent(8): mandoc's and groff's linters say nothing about it; scripts/install
# puts it where man finds it; the real mandb (what the shipped [task.mandb] runs)
# indexes it, so whatis and apropos find it.
source "$(dirname "$0")/lib.bash"
setup man
PAGE=$REPO/man/system-agent.8

out=$(mandoc -T lint "$PAGE" 2>&1) || fail "mandoc -T lint failed: $out"
assert_eq "mandoc -T lint output" "" "$out"
out=$(groff -ww -z -man "$PAGE" 2>&1) || fail "groff -ww -z -man failed: $out"
assert_eq "groff -ww -z -man output" "" "$out"
ok "mandoc -T lint and groff -ww say nothing"

R=$T/root
mkdir "$R"
"$REPO/scripts/install" --root "$R" --binary "$BIN" 2>/dev/null
M=$R/usr/share/man
assert_eq "man page mode and owner" "644 0:0" "$(stat -c '%a %u:%g' "$M/man8/system-agent.8.gz")"
cmp -s "$PAGE" <(gzip -dc "$M/man8/system-agent.8.gz") || fail "installed page differs from man/system-agent.8"
assert_eq "man -w with MANPATH" "$M/man8/system-agent.8.gz" "$(MANPATH=$M man -w system-agent)"
name=$(MANPATH=$M MANWIDTH=80 man system-agent 2>&1 | sed -n '/^NAME/{n;p;q}')
assert_eq "NAME as man shows it" "       system-agent - Linux host agent that samples, logs, heals and alerts" "$name"
ok "scripts/install puts it where man finds it"

# Not indexed yet: whatis knows nothing of it.
whatis -M "$M" system-agent >/dev/null 2>&1 && fail "whatis found system-agent before mandb ran"
mandb -q "$M" || fail "mandb -q $M failed"
assert_eq "whatis" "system-agent (8)     - Linux host agent that samples, logs, heals and alerts" \
    "$(whatis -M "$M" system-agent)"
apropos -M "$M" 'host agent' | grep -q '^system-agent (8)' || fail "apropos does not find it"
ok "mandb indexes it: whatis and apropos find it"
