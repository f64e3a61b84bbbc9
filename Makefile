# The two commands: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON := $(CURDIR)/.venv/bin/python
export MFTG_TEST_PYTHON := $(PYTHON)

.PHONY: run test bootstrap lint unit infra package deploy-sam deploy-cdk bench clean

## run: the main job on the embedded default: two gateways on 127.0.0.1 exchange EDI both ways
run:
	cargo run --quiet --release -p mftg-cli --no-default-features -- demo

## test: install test tools, then format check, clippy and every test
test: bootstrap lint infra unit

bootstrap:
	./tests/bootstrap.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p mftg-cli --no-default-features -- -D warnings
	python3 tests/lint/module_cycles.py

## infra: SAM (aws-sam-translator) and CDK (cdk synth + cdk-nag) templates, cfn-lint, facts, SAM = CDK (offline)
infra: bootstrap
	$(PYTHON) tests/infra/check_templates.py

unit:
	./tests/with-moto.sh cargo test --workspace --no-fail-fast

## package: every Lambda for arm64 (cargo-lambda and Zig from the venv, OpenSSL built in) as
## target/lambda/<name>/bootstrap.zip, which infra/sam and infra/cdk point at
LAMBDAS := send-trigger as2-sender as2-receiver sftp-provisioner lifecycle-installer
package: bootstrap
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/.venv/bin:$$PATH" cargo lambda build --profile lambda --arm64 --output-format zip \
		--features gateway-lambdas/vendored-openssl $(addprefix --bin ,$(LAMBDAS))
	$(PYTHON) tests/infra/check_package.py $(LAMBDAS)

## deploy-sam / deploy-cdk: deploy with AWS credentials (not run by the tests), e.g.
##   make deploy-sam ACCOUNT_ID=123456789012 STACK=mftg
ACCOUNT_ID ?=
STACK ?= mftg
deploy-sam: package
	sam deploy --template-file infra/sam/template.yaml --stack-name $(STACK) --resolve-s3 \
		--capabilities CAPABILITY_IAM --parameter-overrides AccountId=$(ACCOUNT_ID)
deploy-cdk: package
	cd infra/cdk && node_modules/.bin/tsc && node_modules/.bin/cdk deploy -c stackName=$(STACK) \
		--parameters AccountId=$(ACCOUNT_ID) --require-approval never

## bench: speed and memory against openssl cms and pyas2lib (writes docs/PERFORMANCE.md)
bench: bootstrap
	./tests/bench/run.sh

clean:
	cargo clean
	rm -rf .venv bench-out
