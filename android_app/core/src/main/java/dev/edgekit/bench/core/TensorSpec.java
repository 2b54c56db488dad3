package dev.edgekit.bench.core;

import java.util.Arrays;
import org.json.JSONArray;
import org.json.JSONObject;

/** A raw little-endian tensor file: {@code prod(shape) * itemsize} bytes, no header. */
public final class TensorSpec {
    public final String file;
    public final String dtype;
    public final int[] shape;

    public TensorSpec(String file, String dtype, int[] shape) throws ProtocolException {
        if (!Protocol.FILE_NAME.matcher(file).matches()) {
            throw new ProtocolException("tensor file name '" + file + "' must be a plain name ([A-Za-z0-9._-])");
        }
        if (itemSize(dtype) < 0) {
            throw new ProtocolException("tensor dtype '" + dtype + "' is not float32, float16, int8, uint8 or int32");
        }
        if (shape.length == 0) {
            throw new ProtocolException("tensor shape must not be empty");
        }
        for (int d : shape) {
            if (d <= 0) {
                throw new ProtocolException("tensor shape " + Arrays.toString(shape) + " must be positive");
            }
        }
        this.file = file;
        this.dtype = dtype;
        this.shape = shape.clone();
    }

    /** Bytes per element, or -1 for an unknown dtype. */
    public static int itemSize(String dtype) {
        switch (dtype) {
            case "float32":
            case "int32":
                return 4;
            case "float16":
                return 2;
            case "int8":
            case "uint8":
                return 1;
            default:
                return -1;
        }
    }

    public long elements() {
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    public long byteSize() {
        return elements() * itemSize(dtype);
    }

    JSONObject toJson() throws org.json.JSONException {
        JSONArray dims = new JSONArray();
        for (int d : shape) {
            dims.put(d);
        }
        return new JSONObject().put("file", file).put("dtype", dtype).put("shape", dims);
    }

    static TensorSpec fromJson(Object value, String where) throws ProtocolException {
        JSONObject o = Json.object(value, where);
        JSONArray dims = Json.array(o, "shape", where);
        int[] shape = new int[dims.length()];
        for (int i = 0; i < shape.length; i++) {
            Object d = dims.opt(i);
            if (!(d instanceof Integer)) {
                throw new ProtocolException(where + ": shape must hold integers");
            }
            shape[i] = (Integer) d;
        }
        return new TensorSpec(Json.string(o, "file", where), Json.string(o, "dtype", where), shape);
    }
}
