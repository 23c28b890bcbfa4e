.PHONY: demo test bootstrap unit sanity lint docs relay trixie bench
# One command each; every one installs what it needs and can be run again.
demo:
	bash scripts/demo.sh
# Every stage below, and the others (Dovecot, package, alerts): what CI runs.
test:
	bash scripts/test.sh
bootstrap:
	bash scripts/bootstrap.sh
# The parts people run alone: one stage of `make test` each (scripts/test-stages/).
unit:
	bash scripts/test.sh 10-pytest
sanity:
	bash scripts/test.sh 20-sanity
docs:
	bash scripts/test.sh 25-docs
lint:
	bash scripts/test.sh 30-lint
relay:
	bash scripts/test.sh 40-relay
trixie:
	bash scripts/test.sh 45-trixie
bench:
	bash scripts/test.sh 50-bench
