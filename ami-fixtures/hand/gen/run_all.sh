#!/bin/sh
# Rewrites every ami-fixtures/hand/*.ami and *.expect.json from the scenario scripts, then checks them.
set -e
cd "$(dirname "$0")"
for f in s[0-9][0-9].py; do python3 "$f"; done
python3 check.py
