package dev.edgekit.bench.core;

/** Reads the app's memory; Android's probe adds PSS incl. graphics from Debug.getMemoryInfo. */
public interface MemoryProbe {
    MemorySnapshot snapshot();
}
