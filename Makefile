.PHONY: test lint
# Install everything the tests need and run every test tier.
test:
	scripts/test.sh
# ruff, mypy --strict, import-linter.
lint:
	scripts/lint.sh
