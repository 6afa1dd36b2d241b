# SPDX-License-Identifier: GPL-2.0
# Live update for Linux 6.12: the one entry point. See README.md.

H := harness

.PHONY: all deps tree kernel vmtest export export-check checkpatch bisect \
	demo check harness-selftest bench unit help

all: help

help:
	@sed -n '/^## /,$$p' README.md | sed -n '/^## Make targets/,/^## /p' | head -n 40

deps:
	@$(H)/deps.sh

tree:
	@$(H)/tree.sh

kernel:
	@$(H)/kernel.sh

vmtest:
	@python3 $(H)/vmtest.py

export:
	@python3 $(H)/export.py

export-check:
	@python3 $(H)/export.py --check

checkpatch:
	@$(H)/checkpatch.sh

bisect:
	@$(H)/bisect.sh

unit:
	@$(H)/unit.sh

harness-selftest:
	@python3 $(H)/selftest/run.py

demo:
	@$(H)/demo.sh

check:
	@$(H)/check.sh

bench:
	@$(H)/bench.sh
