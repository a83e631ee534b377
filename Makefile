.PHONY: test serve bench
# The test command: installs what the tests need, then runs them all.
test:
	./scripts/test.sh
serve:
	go run ./cmd/callvault serve --dev
