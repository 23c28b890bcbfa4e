"""Exchange Online state of the emulated tenant (owned by the Exchange/SMTP part; placeholder until it lands)."""


class ExchangeState(object):
    def __init__(self, tenant):
        self.tenant = tenant
