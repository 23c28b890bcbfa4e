.PHONY: demo test bootstrap
# One command each; both install what they need and can be run again.
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
bootstrap:
	bash scripts/bootstrap.sh
