#!/usr/bin/env bash
# Repository checks that need no build, run by CTest (tests/lint/CMakeLists.txt):
#
#   tools/lint.sh doc-references   every document a file cites is in the repository:
#       - no tracked file (tests/data aside) names a document kept outside it (the
#         names are spelled in pieces below so this script does not match itself);
#       - every cited page under docs/ exists;
#       - every "docs/wan.md §X.Y", "docs/conventions.md §N" and "docs/bad_inputs.md #N"
#         points at a section or item that exists (also inside ranges such as #42-46).
#   tools/lint.sh include-rules    the folder dependencies of docs/ARCHITECTURE.md hold for
#       #include "..." lines: core/ includes only core/; kernels/ core/ and kernels/;
#       video_io/ core/ and itself; each model folder (text_encoder/, diffusion/, vae/,
#       scheduler/) core/, kernels/ and itself — never app/ or another model folder.
#
# Run from anywhere inside the repository; prints every violation, exits 1 if any.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 2

# Tracked files (a git checkout) or, in an exported tree, every file outside build folders.
list_files() {
  if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    git ls-files -- "$@"
  else
    find "${@:-.}" -type f -not -path './build*' -not -path './.git/*' 2>/dev/null | sed 's|^\./||'
  fi
}

doc_references() {
  local bad=0 f
  local outside="WAN""_SPEC|BAD""_INPUTS|STYLE""\\.md|DESIGN""\\.md|RELIABILITY""\\.md|ANCHORS""\\.md|GPU""\\.md|\\.\\./sha""red|/work/sha""red"
  mapfile -t files < <(list_files | grep -v '^tests/data/')
  local text=()
  for f in "${files[@]}"; do
    [ -f "$f" ] && grep -Iq . "$f" 2> /dev/null && text+=("$f")
  done
  # 1. documents outside the repository
  if grep -nE "$outside" "${text[@]}" /dev/null; then
    echo "lint: the lines above cite documents that are not in the repository; cite docs/ instead"
    bad=1
  fi
  # 2. cited pages under docs/ that do not exist
  local missing
  missing=$(grep -oHE 'docs/[A-Za-z0-9_./-]+\.md' "${text[@]}" /dev/null | sort -u |
    while IFS=: read -r file doc; do [ -f "$doc" ] || echo "$file: cites $doc, which does not exist"; done)
  if [ -n "$missing" ]; then
    echo "$missing"
    bad=1
  fi
  # 3. sections and items that do not exist
  local wan_sections conv_sections bad_items
  wan_sections=$(sed -nE 's/^#{2,3} ([0-9]+(\.[0-9]+)?)\.? .*/\1/p' docs/wan.md 2> /dev/null)
  conv_sections=$(sed -nE 's/^#{2,3} ([0-9]+(\.[0-9]+)?)\.? .*/\1/p' docs/conventions.md 2> /dev/null)
  bad_items=$(sed -nE 's/^([0-9]+)\. \*\*.*/\1/p' docs/bad_inputs.md 2> /dev/null)
  local refs
  refs=$(grep -oHE 'docs/(wan|conventions)\.md §[0-9]+(\.[0-9]+)?([,/] ?§[0-9]+(\.[0-9]+)?)*|docs/bad_inputs\.md #[0-9]+(-[0-9]+)?(, #[0-9]+(-[0-9]+)?)*' \
    "${text[@]}" /dev/null)
  local line file doc rest n lo hi
  while IFS= read -r line; do
    [ -z "$line" ] && continue
    file=${line%%:*}
    rest=${line#*:}
    doc=${rest%% *}
    if [ "$doc" = "docs/bad_inputs.md" ]; then
      for n in $(grep -oE '#[0-9]+(-[0-9]+)?' <<< "$rest" | tr -d '#'); do
        lo=${n%-*}
        hi=${n#*-}
        for n in "$lo" "$hi"; do
          grep -qx "$n" <<< "$bad_items" || { echo "$file: cites $doc #$n, which has no such item"; bad=1; }
        done
      done
    else
      local have=$wan_sections
      [ "$doc" = "docs/conventions.md" ] && have=$conv_sections
      for n in $(grep -oE '§[0-9]+(\.[0-9]+)?' <<< "$rest" | tr -d '§'); do
        grep -qx "$n" <<< "$have" || { echo "$file: cites $doc §$n, which has no such section"; bad=1; }
      done
    fi
  done <<< "$refs"
  [ $bad -eq 0 ] && echo "lint: doc references ok (${#text[@]} files)"
  return $bad
}

include_rules() {
  local bad=0 f dir allowed inc top
  local -A allow=(
    [core]="core"
    [kernels]="core kernels"
    [video_io]="core video_io"
    [text_encoder]="core kernels text_encoder"
    [diffusion]="core kernels diffusion"
    [vae]="core kernels vae"
    [image_encoder]="core kernels image_encoder"
    [scheduler]="core kernels scheduler"
  )
  local checked=0
  while IFS= read -r f; do
    dir=${f%%/*}
    allowed=${allow[$dir]:-}
    [ -z "$allowed" ] && continue
    checked=$((checked + 1))
    while IFS= read -r inc; do
      top=${inc%%/*}
      [ "$top" = "$inc" ] && continue  # a file next to this one ("foo.h")
      if [[ " $allowed " != *" $top "* ]]; then
        echo "$f: includes \"$inc\"; $dir/ may include only: $allowed"
        bad=1
      fi
    done < <(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([^"]+)".*/\1/p' "$f")
  done < <(list_files | grep -E '\.(h|hpp|cpp|cu|cuh)$')
  [ $bad -eq 0 ] && echo "lint: include rules ok ($checked files)"
  return $bad
}

case "${1:-}" in
  doc-references) doc_references ;;
  include-rules) include_rules ;;
  *)
    echo "usage: tools/lint.sh doc-references|include-rules" >&2
    exit 2
    ;;
esac
