#!/usr/bin/env bash
# tests/conf-sample-sync.sh - etc/ideaforge.conf documents every configuration key that
# ideaforge-api knows (lib/srv.c srv_config_keys + app/config.c), each with its built-in
# default, and no key that does not exist. Run by `make check`.
set -euo pipefail

bin=${top_builddir:-.}/ideaforge-api
sample=${top_srcdir:-.}/etc/ideaforge.conf
# Keys whose default is an install path, so it differs between builds: only their presence
# is checked.
path_keys=" sql_dir "

empty=$(mktemp)
trap 'rm -f "$empty"' EXIT

# The defaults: an empty config file and no IDEAFORGE_* variables.
dump=$(env -i PATH="$PATH" "$bin" --config "$empty" --print-config)

declare -A def doc
while IFS= read -r line; do
	if [[ $line =~ ^([a-z0-9_]+)\ =\ ?(.*)$ ]]; then
		def[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
	fi
done <<<"$dump"
while IFS= read -r line; do
	if [[ $line =~ ^#?([a-z0-9_]+)\ =\ ?(.*)$ ]]; then
		doc[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
	fi
done <"$sample"

[ ${#def[@]} -gt 0 ] || { echo "no keys in: $bin --print-config"; exit 1; }

bad=0
for k in "${!def[@]}"; do
	if [ -z "${doc[$k]+set}" ]; then
		echo "FAIL: key '$k' (default '${def[$k]}') is not documented in etc/ideaforge.conf"
		bad=1
		continue
	fi
	case "$path_keys" in *" $k "*) continue ;; esac
	case ${def[$k]} in "<set>" | "<unset>") continue ;; esac
	# Integers compare by value: the dump prints 0660 (octal in the file) as 432.
	if [[ ${def[$k]} =~ ^[0-9]+$ && ${doc[$k]} =~ ^[0-9]+$ ]] &&
		[ $((${def[$k]})) -eq $((${doc[$k]})) ]; then
		continue
	fi
	if [ "${def[$k]}" != "${doc[$k]}" ]; then
		echo "FAIL: key '$k': etc/ideaforge.conf says '${doc[$k]}', the built-in default is '${def[$k]}'"
		bad=1
	fi
done
for k in "${!doc[@]}"; do
	if [ -z "${def[$k]+set}" ]; then
		echo "FAIL: etc/ideaforge.conf documents '$k', which is not a configuration key"
		bad=1
	fi
done
[ $bad -eq 0 ] && echo "PASS: etc/ideaforge.conf documents all ${#def[@]} keys with their defaults"
exit $bad
