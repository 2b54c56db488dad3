package dev.edgekit.bench.core;

/** Told about each stage (load, parity, warmup, timed, done); instrumentation reports it. */
public interface ProgressListener {
    void stage(String stage);

    ProgressListener NONE = stage -> { };
}
