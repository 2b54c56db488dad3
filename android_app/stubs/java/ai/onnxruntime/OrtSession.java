package ai.onnxruntime;

import java.util.Collections;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;

/** Compile-time stub of the ONNX Runtime Java API the app calls. */
public final class OrtSession implements AutoCloseable {
    public static class SessionOptions implements AutoCloseable {
        public SessionOptions() {}

        public void setIntraOpNumThreads(int numThreads) throws OrtException {}

        public void addXnnpack(Map<String, String> providerOptions) throws OrtException {}

        public void addConfigEntry(String configKey, String configValue) throws OrtException {}

        /** Profiling on for sessions made with these options; filePath is the profile file's prefix. */
        public void enableProfiling(String filePath) throws OrtException {}

        public void addNnapi() throws OrtException {}

        public void addNnapi(java.util.EnumSet<ai.onnxruntime.providers.NNAPIFlags> flags) throws OrtException {}

        @Override
        public void close() {}
    }

    public static class Result implements AutoCloseable, Iterable<Map.Entry<String, OnnxValue>> {
        public int size() {
            return 0;
        }

        public OnnxValue get(int index) {
            return null;
        }

        @Override
        public Iterator<Map.Entry<String, OnnxValue>> iterator() {
            return Collections.emptyIterator();
        }

        @Override
        public void close() {}
    }

    public Set<String> getInputNames() {
        return Collections.emptySet();
    }

    public Map<String, NodeInfo> getInputInfo() throws OrtException {
        return Collections.emptyMap();
    }

    public Result run(Map<String, ? extends OnnxTensor> inputs) throws OrtException {
        return new Result();
    }

    /** Ends profiling and returns the profile file's path (profiling enabled in the options). */
    public String endProfiling() throws OrtException {
        return "";
    }

    @Override
    public void close() throws OrtException {}
}
