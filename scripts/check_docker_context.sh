#!/usr/bin/env bash
# Checks that the Dockerfile's build stage has every file the crate needs, without a Docker
# engine: lays out what its COPY lines would give the builder (from the committed files
# minus .dockerignore, as `docker build .` sees them) in a temporary directory and runs
# `cargo check --locked` there. A file the crate embeds (include_str!, include_bytes!) but
# the Dockerfile does not copy fails here as it would fail the image build.
#
#   scripts/check_docker_context.sh
#
# Compiled artefacts go to the repository's target/ (CARGO_TARGET_DIR if set), so the
# dependencies already built for the tests are reused. TICKFLOW_BUILD_LOCK, when set, is a
# lock file the cargo step holds (see scripts/test).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
context="$work/context"
build="$work/build"
mkdir -p "$context" "$build"

# The build context: the committed files (what a fresh clone has) minus .dockerignore.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard) \
  | (cd "$repo" && xargs -0 cp --parents -t "$context" 2>/dev/null || true)
if [ -f "$repo/.dockerignore" ]; then
  (
    cd "$context"
    shopt -s globstar nullglob dotglob
    while IFS= read -r pattern || [ -n "$pattern" ]; do
      pattern=${pattern%%#*}
      pattern=$(echo "$pattern" | xargs)
      [ -z "$pattern" ] && continue
      case "$pattern" in
        '!'*) echo "check_docker_context: .dockerignore exceptions ($pattern) are not supported" >&2; exit 1 ;;
      esac
      pattern=${pattern#/}
      # shellcheck disable=SC2086 # the pattern is meant to glob
      for match in $pattern; do rm -rf -- "$match"; done
    done <"$repo/.dockerignore"
  )
fi

# The builder stage's COPY lines (not COPY --from=another stage), applied to an empty
# WORKDIR as Docker applies them.
copies=0
while read -r instruction rest; do
  case "${instruction^^}" in COPY) ;; *) continue ;; esac
  read -ra words <<<"$rest"
  args=()
  for w in "${words[@]}"; do
    case "$w" in
      --from=*) args=(); continue 2 ;;
      --*) ;;
      '['*) echo "check_docker_context: JSON-form COPY is not supported: COPY $rest" >&2; exit 1 ;;
      *) args+=("$w") ;;
    esac
  done
  [ ${#args[@]} -ge 2 ] || { echo "check_docker_context: cannot read COPY $rest" >&2; exit 1; }
  dest=${args[-1]}
  unset 'args[-1]'
  for src in "${args[@]}"; do
    if [ ! -e "$context/$src" ]; then
      echo "check_docker_context: COPY $src: not in the build context (missing or in .dockerignore)" >&2
      exit 1
    fi
    if [ -d "$context/$src" ]; then
      mkdir -p "$build/$dest"
      cp -a "$context/$src/." "$build/$dest/"
    elif [ ${#args[@]} -gt 1 ] || [[ "$dest" == */ ]]; then
      mkdir -p "$build/$dest"
      cp -a "$context/$src" "$build/$dest/"
    else
      mkdir -p "$(dirname "$build/$dest")"
      cp -a "$context/$src" "$build/$dest"
    fi
  done
  copies=$((copies + 1))
done < <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$repo/Dockerfile")
[ "$copies" -gt 0 ] || { echo "check_docker_context: no COPY line in the Dockerfile" >&2; exit 1; }

echo "docker build context: $(cd "$build" && find . -type f | wc -l) files from $copies COPY lines; cargo check --locked in it" >&2
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
cd "$build"
if [ -n "${TICKFLOW_BUILD_LOCK:-}" ]; then
  flock "$TICKFLOW_BUILD_LOCK" cargo check --locked --bin tickflow
else
  cargo check --locked --bin tickflow
fi
