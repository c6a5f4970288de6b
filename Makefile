.PHONY: test lint demo
# Install everything the tests need and run every test tier.
test:
	scripts/test.sh
# ruff, mypy --strict, import-linter.
lint:
	scripts/lint.sh
# Everything on this machine: control plane, Prometheus with a generated week, ledger, operator, samples.
# Ctrl-C stops it. Options: make demo DEMO_ARGS="--port 18080".
demo:
	scripts/demo.sh $(DEMO_ARGS)
