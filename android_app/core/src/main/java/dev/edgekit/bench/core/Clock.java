package dev.edgekit.bench.core;

/** Monotonic time source, injectable for tests. */
public interface Clock {
    long nanoTime();

    Clock SYSTEM = System::nanoTime;
}
