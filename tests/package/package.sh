#!/usr/bin/env bash
# The packages as a user gets them, outside this repository. Packs LabelNoiseLab (the library) and
# lnlab (the .NET tool) into a temporary folder; installs the tool from there
# (`dotnet tool install --tool-path ... --add-source ... --prerelease`) and runs `lnlab demo` in an
# unrelated temporary folder (exit 0 and status `complete`); then copies each of the three examples
# (examples/*/Program.cs) into a temporary console project that references the LabelNoiseLab package
# from that folder (nothing from the repository), builds it and runs it on a small subset.
# Needs the Fashion-MNIST package (/usr/share/datasets/fashion-mnist, or $LNLAB_DATA); without it
# it says so and exits 0 without claiming a pass. The restores use a temporary package cache with
# the user's cache as a read-only fallback, so the packed version never lands in ~/.nuget/packages.
# Environment: LNLAB_PACKAGE_KEEP=1 keeps the temporary folder; LNLAB_PACKAGE_TIMEOUT (s, default
# 600) bounds each build or run.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
say() { echo "package.sh: $*"; }
timeout_s="${LNLAB_PACKAGE_TIMEOUT:-600}"

if [ -z "${LNLAB_DATA:-}" ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then
  say "SKIPPED, not run: no Fashion-MNIST (apt-get install dataset-fashion-mnist, or set LNLAB_DATA); no pass is claimed"
  exit 0
fi

tmp="$(mktemp -d /tmp/lnlab-package.XXXXXX)"
cleanup() {
  if [ "${LNLAB_PACKAGE_KEEP:-}" = "1" ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
fail() {
  say "FAILED: $*"
  exit 1
}
# Runs a command bounded in time with its output in $tmp/logs/NAME.log; on failure prints its tail.
step() {
  local name="$1"
  shift
  mkdir -p "$tmp/logs"
  if ! timeout "$timeout_s" "$@" >"$tmp/logs/$name.log" 2>&1; then
    echo "----- $name (last 30 lines) -----"
    tail -n 30 "$tmp/logs/$name.log"
    fail "$name (exit code above; log $tmp/logs/$name.log)"
  fi
}

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
user_cache="$HOME/.nuget/packages"
pkgs="$tmp/packages"
version="$(dotnet msbuild "$root/src/LabelNoiseLab/LabelNoiseLab.csproj" -nologo -getProperty:Version)"
[ -n "$version" ] || fail "could not read the package version"
say "packing LabelNoiseLab and lnlab $version"
step pack-library dotnet pack "$root/src/LabelNoiseLab/LabelNoiseLab.csproj" -c Release -o "$pkgs" -nologo
step pack-tool dotnet pack "$root/src/LabelNoiseLab.Cli/LabelNoiseLab.Cli.csproj" -c Release -o "$pkgs" -nologo
for p in "LabelNoiseLab.$version.nupkg" "lnlab.$version.nupkg"; do
  [ -f "$pkgs/$p" ] || fail "dotnet pack wrote no $p"
done

# From here on restores use a temporary cache (the user's is a read-only fallback), so the packed
# version never lands in ~/.nuget/packages. The tool comes from the local package folder alone (a
# config with no other source: no other package named lnlab can win), run where no repository file is within reach.
export NUGET_PACKAGES="$tmp/nuget-packages"
cat >"$tmp/tool-nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
  </packageSources>
</configuration>
XML
step tool-install dotnet tool install lnlab --tool-path "$tmp/tool" --configfile "$tmp/tool-nuget.config" --add-source "$pkgs" --prerelease
"$tmp/tool/lnlab" --version >"$tmp/logs/tool-version.log" 2>&1 || true
grep -q "^$version" "$tmp/logs/tool-version.log" || fail "the installed lnlab says version '$(head -n 1 "$tmp/logs/tool-version.log")', not $version"
mkdir -p "$tmp/elsewhere"
(cd "$tmp/elsewhere" && step lnlab-demo "$tmp/tool/lnlab" demo --out "$tmp/elsewhere/demo") || exit 1
status="$(head -n 1 "$tmp/elsewhere/demo/status" 2>/dev/null)"
[ "$status" = "complete" ] || fail "lnlab demo's run status is '$status', not complete"
grep -q '^complete: ' "$tmp/logs/lnlab-demo.log" || fail "lnlab demo printed no 'complete:' line"
say "tool: lnlab demo complete ($(tail -n 1 "$tmp/elsewhere/demo/metrics.csv" | cut -d, -f1-2 | tr , ' '), status complete)"

# The examples as a user's own console projects referencing the package (small subsets: seconds each).
write_project() {
  local dir="$1"
  mkdir -p "$dir"
  cat >"$dir/Example.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
    <RestoreFallbackFolders>$user_cache</RestoreFallbackFolders>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="LabelNoiseLab" Version="$version" />
  </ItemGroup>
</Project>
XML
  cat >"$dir/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="local" value="$pkgs" />
  </packageSources>
</configuration>
XML
}
for spec in "train-noisy-mlp:2000 1:^Complete: " "custom-callback-and-loss:2000 1:^Complete: " "audit-and-retrain:1500 1 3:^Complete: "; do
  name="${spec%%:*}"
  rest="${spec#*:}"
  args="${rest%%:*}"
  expect="${rest#*:}"
  dir="$tmp/examples/$name"
  write_project "$dir"
  cp "$root/examples/$name/Program.cs" "$dir/Program.cs"
  step "build-$name" dotnet build "$dir" -c Release -nologo
  # shellcheck disable=SC2086 # the example's arguments, split on purpose
  (cd "$dir" && step "run-$name" dotnet bin/Release/net10.0/Example.dll $args) || exit 1
  grep -Eq "$expect" "$tmp/logs/run-$name.log" || fail "$name printed no line matching '$expect'"
  for s in "$dir"/runs/*/status; do
    [ "$(head -n 1 "$s")" = "complete" ] || fail "$name: $s is '$(head -n 1 "$s")', not complete"
  done
  say "example $name ($args): $(grep -E "$expect" "$tmp/logs/run-$name.log" | head -n 1)"
done
say "PASSED"
