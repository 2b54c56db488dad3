package dev.edgekit.bench.core;

/** An engine failure, tagged with the protocol's {@code error_kind}. */
public final class EngineException extends Exception {
    private static final long serialVersionUID = 1L;

    private final String kind;

    public EngineException(String kind, String message) {
        super(message);
        this.kind = kind;
    }

    public EngineException(String kind, String message, Throwable cause) {
        super(message, cause);
        this.kind = kind;
    }

    /** One of model_load, input_mismatch, inference. */
    public String kind() {
        return kind;
    }
}
