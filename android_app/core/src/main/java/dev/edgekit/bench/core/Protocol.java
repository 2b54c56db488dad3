package dev.edgekit.bench.core;

import java.util.regex.Pattern;

/** Names shared with the host; see android_app/PROTOCOL.md. */
public final class Protocol {
    private Protocol() {}

    public static final int VERSION = 1;
    public static final String PACKAGE = "dev.edgekit.bench";
    public static final String APP_VERSION = "0.1.0";
    public static final String CONFIG_SCHEMA = "edgekit.bench.config";
    public static final String RESULT_SCHEMA = "edgekit.bench.result";
    public static final String CONFIG_FILE = "config.json";
    public static final String RESULT_FILE = "result.json";
    static final Pattern RUN_ID = Pattern.compile("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$");
    static final Pattern FILE_NAME = Pattern.compile("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$");

    /** Output file name of output {@code j} of parity input {@code k}. */
    public static String outputName(int k, int j) {
        return String.format(java.util.Locale.ROOT, "out_%03d_%d.bin", k, j);
    }
}
