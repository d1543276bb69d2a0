# Entry points for people: the suite, the demo, the benchmarks and the chaos run (root needed
# for everything that builds namespaces). Arguments: MINUTES and SEED for the chaos run.
PYTHON := .venv/bin/python
MINUTES ?= 10
SEED ?=

.PHONY: test demo bench chaos chaos-quick

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	bash scripts/bootstrap.sh
	$(PYTHON) -m bench

# Random faults on a three-node cluster, judged by the invariants of issue 7 (exit 1 if one
# breaks); SEED=n replays a fault sequence.
chaos:
	bash scripts/bootstrap.sh
	$(PYTHON) -m chaos --minutes $(MINUTES) $(if $(SEED),--seed $(SEED))

chaos-quick:
	bash scripts/bootstrap.sh
	$(PYTHON) -m chaos --minutes 1 $(if $(SEED),--seed $(SEED))
