#!/bin/sh
# deploy/k8s/create-secret.sh [NAMESPACE] - create the Secret ideaforge-secrets once, with
# fresh random values (see secret.example.yaml for its keys). Never overwrites: when the Secret
# exists it says so and changes nothing (and `kubectl create` itself refuses an existing one).
# Server-wide provider keys are taken from files named by OPENAI_API_KEY_FILE,
# ANTHROPIC_API_KEY_FILE and GEMINI_API_KEY_FILE when set; otherwise those keys are empty.
#   deploy/k8s/create-secret.sh                       # namespace ideaforge-ai
#   OPENAI_API_KEY_FILE=~/openai.key deploy/k8s/create-secret.sh
set -eu
ns=${1:-ideaforge-ai}
name=ideaforge-secrets
kubectl=${KUBECTL:-kubectl}

if $kubectl -n "$ns" get secret "$name" >/dev/null 2>&1; then
	echo "secret $ns/$name exists: left as it is (delete it first to make a new one)"
	exit 0
fi
$kubectl get namespace "$ns" >/dev/null 2>&1 || $kubectl create namespace "$ns"

umask 077
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
hex() { head -c "$1" /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }
head -c 48 /dev/urandom | base64 -w0 >"$d/jwt.secret"
hex 32 >"$d/secrets.key"
hex 24 >"$d/postgres-password"
hex 32 >"$d/redis-password"
for p in openai anthropic gemini; do
	var=$(echo "$p" | tr a-z A-Z)_API_KEY_FILE
	eval "src=\${$var:-}"
	if [ -n "$src" ]; then cp "$src" "$d/$p.key"; else : >"$d/$p.key"; fi
done

$kubectl -n "$ns" create secret generic "$name" \
	--from-file=jwt.secret="$d/jwt.secret" \
	--from-file=secrets.key="$d/secrets.key" \
	--from-file=postgres-password="$d/postgres-password" \
	--from-file=redis-password="$d/redis-password" \
	--from-file=openai.key="$d/openai.key" \
	--from-file=anthropic.key="$d/anthropic.key" \
	--from-file=gemini.key="$d/gemini.key"
echo "secret $ns/$name created; back up secrets.key apart from the database"
