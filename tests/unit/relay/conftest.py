"""The proxy's fixtures (defined with its tests in test_proxy.py), for the other relay test files too: a real
upstream SMTP server (aiosmtpd) and a running proxy process loop in front of it."""

import test_proxy

upstream = test_proxy.upstream
run_proxy = test_proxy.run_proxy
