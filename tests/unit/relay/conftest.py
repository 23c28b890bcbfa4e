"""The proxy's fixtures (defined with its tests in test_proxy.py), for the other relay test files too: the
emulated Exchange SMTP endpoint (`upstream`, or `own_upstream` for a test that takes it down) and a running proxy
process loop in front of it."""

import test_proxy

upstream = test_proxy.upstream
own_upstream = test_proxy.own_upstream
run_proxy = test_proxy.run_proxy
