package dev.edgekit.bench.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** Raw little-endian tensor files to and from buffers. */
public final class TensorFiles {
    private TensorFiles() {}

    /** The bytes of a tensor file, checked against its spec, as a little-endian buffer. */
    public static ByteBuffer decode(byte[] data, TensorSpec spec) throws ProtocolException {
        if (data.length != spec.byteSize()) {
            throw new ProtocolException(spec.file + ": " + data.length + " bytes, expected " + spec.byteSize()
                    + " for " + spec.dtype + " " + java.util.Arrays.toString(spec.shape));
        }
        return ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    }

    public static ByteBuffer read(Path dir, TensorSpec spec) throws IOException, ProtocolException {
        return decode(Files.readAllBytes(dir.resolve(spec.file)), spec);
    }

    /** float32 values of a little-endian buffer. */
    public static float[] floats(ByteBuffer buf) {
        float[] out = new float[buf.remaining() / 4];
        buf.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    /** Little-endian bytes of float32 values. */
    public static byte[] encodeFloats(float[] values) {
        ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(values);
        return buf.array();
    }

    /** Little-endian bytes of int32 values. */
    public static byte[] encodeInts(int[] values) {
        ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.asIntBuffer().put(values);
        return buf.array();
    }

    /** int32 values of a little-endian buffer. */
    public static int[] ints(ByteBuffer buf) {
        int[] out = new int[buf.remaining() / 4];
        buf.duplicate().order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out);
        return out;
    }
}
