package dev.edgekit.bench.core;

/** A clock that only moves when told to. */
final class FakeClock implements Clock {
    private long now;

    void advanceMs(double ms) {
        now += (long) (ms * 1e6);
    }

    @Override
    public long nanoTime() {
        return now;
    }
}
