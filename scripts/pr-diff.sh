#!/usr/bin/env bash
# The verdict changes of a pull request, as a Markdown comment on stdout.
#
#   scripts/pr-diff.sh BASE HEAD [DIR]
#
# BASE and HEAD are git revisions (e.g. origin/main and HEAD), DIR the
# directory of policy files in the repository (default: policies). Both
# sides are read with `git show` (the working tree is not touched) and
# explored exhaustively by the same freezefuzz binary ($FREEZEFUZZ, default
# `freezefuzz` on PATH), so the comment shows what the policy change does,
# not what a change of freezefuzz does. Run from inside the repository.
# Exit 0 with the comment (changed or not), 2 on bad input.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: $0 BASE HEAD [DIR]" >&2
    exit 2
fi
base=$1
head=$2
dir=${3:-policies}
freezefuzz=${FREEZEFUZZ:-freezefuzz}

base_sha=$(git rev-parse --short "$base^{commit}")
head_sha=$(git rev-parse --short "$head^{commit}")

echo "<!-- freezefuzz-pr-diff: this comment is replaced on each push -->"
"$freezefuzz" diff "$base_sha:$dir" "$head_sha:$dir" --format markdown
echo
echo "<sub>\`freezefuzz diff $base_sha:$dir $head_sha:$dir\` · $("$freezefuzz" --version)</sub>"
