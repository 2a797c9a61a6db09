#!/usr/bin/env bash
# Rewrites the citations of the design and style files that used to live
# in a shared folder beside the repository into citations of the
# repository's own documents (issue 22):
#
#   the old design file, "§N", "§N and §M", "§N step K", ".md §N"
#                                    → docs/contract.md §N ...
#   its name in backquotes with the shared-folder path → `docs/contract.md`
#   "(<design> has no row for"       → "(docs/contract.md §5 lists"
#   the old style file, "§N" or ".md N"
#                                    → docs/architecture.md style rule N
#
# The patterns below are written with a bracket (DESIG[N], STYL[E]) so that
# this file does not itself hold what tests/self_contained.rs looks for.
#
# Usage: scripts/cite-contract.sh [PATH...]
#   With no argument, every tracked file; with arguments, the tracked files
#   under those paths. docs/contract.md, tests/self_contained.rs and this
#   script are never touched. Binary files are skipped. Afterwards every
#   tracked file is checked with the rule of tests/self_contained.rs; what
#   is left (a citation this script cannot rewrite) is listed and the exit
#   status is 1. Needs git and GNU sed/grep.
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"

exempt='^(docs/contract\.md|tests/self_contained\.rs|scripts/cite-contract\.sh)$'

# What tests/self_contained.rs refuses (grep -E).
outside=(-e '\.\./shared' -e 'DESIG[N]\.md' -e 'STYL[E]\.md' -e 'STYL[E] §' -e '\<DESIG[N]\>')

# The rewrites, in order: the longer forms first.
rewrites=(
    -e 's#\.\./shared/DESIG[N]\.md#docs/contract.md#g'
    -e 's#\.\./shared/STYL[E]\.md#docs/architecture.md ("How the code is written")#g'
    -e 's#DESIG[N]\.md#docs/contract.md#g'
    -e 's#DESIG[N] has no row for#docs/contract.md §5 lists#g'
    -e 's#\<DESIG[N]\>#docs/contract.md#g'
    -e 's#STYL[E]\.md ([0-9]+)#docs/architecture.md style rule \1#g'
    -e 's#STYL[E] §([0-9]+)#docs/architecture.md style rule \1#g'
)

# Tracked files under $@ (all with no argument), minus the exempt ones, that
# hold a citation; NUL-separated.
candidates() {
    git ls-files -z -- "$@" \
        | grep -zvE "$exempt" \
        | xargs -0 -r grep -IlZE "${outside[@]}" --
}

mapfile -d '' files < <(candidates "$@" || true)
if ((${#files[@]})); then
    sed -i -E "${rewrites[@]}" -- "${files[@]}"
    echo "rewrote citations in ${#files[@]} file(s):"
    printf '  %s\n' "${files[@]}"
else
    echo "no citation to rewrite"
fi

# What is left anywhere in the repository (not only under $@).
left=$(git ls-files -z | grep -zvE "$exempt" | xargs -0 -r grep -InE "${outside[@]}" -- || true)
if [[ -n $left ]]; then
    echo "still pointing outside the repository:" >&2
    echo "$left" >&2
    exit 1
fi
echo "no tracked file cites a file outside the repository"
