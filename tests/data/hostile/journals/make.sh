#!/bin/sh
# Makes the hostile recovery journals that crates/kubepki-cli/tests/recovery.rs plants in a tree's
# pki/ folder (issue: "Trust nothing found in a tree"). Each is named as kubepki names its
# journals, with a PID that is never alive (above Linux's pid_max), so an old kubepki would have
# replayed it. Paths are relative to the folder the command runs in (the test's scratch root),
# where the test creates outside/victim, outside/folder/inner, and t/pki/ with a tree.
set -eu
cd "$(dirname "$0")"
P=4194999
# 1. Replace a file outside the tree (old reader: rename(2) over the target).
printf 'folders 1\nR\toutside/victim\toutside/replaced\nend\n' > "replace-outside.kubepki-journal-$P-01"
# 2. Move the CA key out of the tree.
printf 'folders 1\nL\tt/pki/ca.key\toutside/stolen.key\nend\n' > "steal-key.kubepki-journal-$P-02"
# 3. Move a whole folder.
printf 'folders 1\nR\toutside/folder\toutside/moved\nend\n' > "move-folder.kubepki-journal-$P-03"
# 4. A well-formed temp name with a target that climbs out with "..".
printf 'folders 1\nL\t.ca.key.kubepki-%s-aa.tmp\t../outside/victim\nend\n' "$P" > "dotdot-target.kubepki-journal-$P-04"
# 5. A source that climbs out with "..".
printf 'folders 1\nL\t../outside/victim\tca.crt\nend\n' > "dotdot-source.kubepki-journal-$P-05"
# 6. An absolute target (old format), the old way of deleting a file: link fails, source removed.
printf 'folders 1\nL\t/proc/version\toutside/victim\nend\n' > "absolute.kubepki-journal-$P-06"
# 7. Old kubepki format (absolute paths, no end line) naming files inside the tree.
printf 'L\t/etc/kubernetes/pki/.x.kubepki-1-aa.tmp\t/etc/kubernetes/pki/x\n' > "old-format.kubepki-journal-$P-07"
# 8. A journal whose name has no PID (old kubepki replayed those always).
printf 'folders 1\nR\toutside/victim\tt/pki/ca.key\nend\n' > "no-pid.kubepki-journal-x"
