#!/bin/sh
# A clone must build, test and run with nothing beside it. Given the source folder, fails if a tracked file names a
# path outside the repository: the reference folder that used to sit beside the checkout, the folder above the
# checkout (found at run time), or the home/work folders of one machine; or if a committed symlink points outside
# the repository. Exits 77 (ctest's SKIP_RETURN_CODE) when the folder is not a git checkout: a source archive has no
# tracked files to check, and failing there would only say how the sources were unpacked.
#
# The patterns are assembled from parts so that this file does not match them itself.
src=${1:?usage: check_self_contained.sh SOURCE_DIR}
if ! command -v git >/dev/null 2>&1 || ! git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "$src: not a git checkout (or no git): no tracked files to check, skipped"
  exit 77
fi
src=$(cd "$src" && pwd -P)
status=0

# Prints the tracked lines matching the extended regex $1 (further arguments: pathspecs); status 1 on a hit or on
# an error of git grep (its status 1 means no match).
report() {
  regex=$1
  shift
  hits=$(git -C "$src" grep -I -n -E -e "$regex" -- "$@")
  case $? in
    0) echo "tracked files name a path outside the repository ($regex):"; echo "$hits"; status=1 ;;
    1) ;;
    *) echo "git grep failed on $regex"; status=1 ;;
  esac
}

# ERE-quotes $1.
quote() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g'; }

up=..
beside=shared
outside="$(quote "$up/$beside")|$(quote "$beside/")tokenizer"
for top in work home root Users; do
  outside="$outside|$(quote "/$top/")"
done

# The folder above the checkout, as an absolute path or as the first component of one ("/name/..."; "/name" alone
# too, except in tokenizer.json vocabularies, whose strings are tokens, not paths). Names that are common
# path components anyway (a checkout in /tmp, or in a folder named like one of the repository's own) are skipped.
parent=$(dirname "$src")
name=$(basename "$parent")
case "$name" in
  ''|/|tmp|usr|opt|var|mnt|srv|lib|bin|etc|dev|proc|sys) name= ;;
esac
if [ -n "$name" ] && git -C "$src" ls-files | grep -q -E "(^|/)$(quote "$name")/"; then
  name=
fi
if [ -n "$name" ]; then
  boundary='(^|[^[:alnum:]_.~-])'
  outside="$outside|$boundary$(quote "/$name/")|$(quote "$up/$name/")|$(quote "$parent/")"
  report "$boundary($(quote "/$name")|$(quote "$parent"))(\$|[^[:alnum:]_./-])" . ':(exclude,glob)**/tokenizer.json'
else
  echo "note: the folder above the checkout ($parent) has too generic a name to search for"
fi
report "$outside" .

# Committed symlinks must resolve inside the repository.
git -C "$src" ls-files -s | awk '$1 == "120000" { print $2, $4 }' | {
  outside=0
  while read -r blob path; do
    target=$(git -C "$src" cat-file blob "$blob")
    resolved=$(realpath -m -s "$src/$(dirname "$path")/$target")
    case "$resolved" in
      "$src"/*) ;;
      *) echo "$path: committed symlink to $target, outside the repository"; outside=1 ;;
    esac
  done
  exit $outside
} || status=1
exit $status
