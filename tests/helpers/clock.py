"""A clock that advances only when the code under test sleeps: retry tests run without waiting."""


class FakeTime(object):
    def __init__(self, start=1000.0):
        self.now = float(start)
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
