# The two commands: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON := $(CURDIR)/.venv/bin/python
export MFTG_TEST_PYTHON := $(PYTHON)

.PHONY: run test bootstrap lint unit infra bench clean

## run: the main job on the embedded default: two gateways on 127.0.0.1 exchange EDI both ways
run:
	cargo run --quiet --release -p mftg-cli -- demo

## test: install test tools, then format check, clippy and every test
test: bootstrap lint infra unit

bootstrap:
	./tests/bootstrap.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## infra: SAM (aws-sam-translator) and CDK (cdk synth + cdk-nag) templates, cfn-lint, facts, SAM = CDK (offline)
infra: bootstrap
	$(PYTHON) tests/infra/check_templates.py

unit:
	./tests/with-moto.sh cargo test --workspace --no-fail-fast

## bench: speed and memory against openssl cms and pyas2lib (writes docs/PERFORMANCE.md)
bench: bootstrap
	./tests/bench/run.sh

clean:
	cargo clean
	rm -rf .venv bench-out
