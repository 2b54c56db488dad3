package dev.edgekit.bench.core;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/** VmRSS and VmHWM from {@code /proc/self/status}. */
public final class ProcStatus {
    private ProcStatus() {}

    /** Parse the text of a status file; missing fields read as 0. */
    public static MemorySnapshot parse(String status) {
        long rss = 0;
        long hwm = 0;
        for (String line : status.split("\n")) {
            if (line.startsWith("VmRSS:")) {
                rss = kib(line);
            } else if (line.startsWith("VmHWM:")) {
                hwm = kib(line);
            }
        }
        return new MemorySnapshot(rss, hwm, null, null);
    }

    private static long kib(String line) {
        String[] parts = line.substring(line.indexOf(':') + 1).trim().split("\\s+");
        try {
            long value = Long.parseLong(parts[0]);
            String unit = parts.length > 1 ? parts[1] : "kB";
            return unit.equalsIgnoreCase("mB") ? value * 1024 : value;
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /** The current process's figures (0 where /proc is unavailable). */
    public static MemorySnapshot self() {
        Path p = Paths.get("/proc/self/status");
        try {
            return parse(new String(Files.readAllBytes(p), StandardCharsets.UTF_8));
        } catch (IOException e) {
            return new MemorySnapshot(0, 0, null, null);
        }
    }
}
