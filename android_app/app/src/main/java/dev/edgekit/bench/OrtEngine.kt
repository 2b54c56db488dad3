package dev.edgekit.bench

import ai.onnxruntime.OnnxTensor
import ai.onnxruntime.OnnxJavaType
import ai.onnxruntime.OrtEnvironment
import ai.onnxruntime.OrtException
import ai.onnxruntime.OrtSession
import ai.onnxruntime.TensorInfo
import ai.onnxruntime.providers.NNAPIFlags
import dev.edgekit.bench.core.Engine
import dev.edgekit.bench.core.AtomicFiles
import dev.edgekit.bench.core.EngineException
import dev.edgekit.bench.core.Placement
import dev.edgekit.bench.core.RunConfig
import dev.edgekit.bench.core.TensorSpec
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.FloatBuffer
import java.nio.file.Path
import java.util.EnumSet

/**
 * ONNX Runtime (onnxruntime-android) on `.onnx` files. CPU runs through the XNNPACK execution
 * provider when the build has it (else ORT's own CPU kernels, said in fallback_reason); GPU
 * and NPU requests go to the NNAPI provider with its CPU implementation disabled (NNAPI picks
 * GPU or NPU itself, and is deprecated from Android 15); when NNAPI cannot load the model that
 * way, the model runs on CPU and the result says why.
 */
class OrtEngine : Engine {
    private companion object {
        const val MAX_PROFILE_BYTES = 64L shl 20
    }

    private var env: OrtEnvironment? = null
    private var session: OrtSession? = null
    private var inputName = ""
    private var shape = LongArray(0)
    private var tensor: OnnxTensor? = null
    private var result: OrtSession.Result? = null
    private var modelPath: Path? = null
    private var onNnapi = false
    private var profileJson: ByteArray? = null

    override fun load(model: Path, config: RunConfig): Engine.Loaded {
        val environment = OrtEnvironment.getEnvironment()
        env = environment
        if (config.accelerator == "cpu") {
            return open(environment, model, config, nnapi = false)
        }
        // GPU/NPU through NNAPI with its CPU reference disabled (else "gpu" could run on NNAPI's
        // CPU implementation); when NNAPI cannot take the model that way, a CPU retry says why
        return try {
            open(environment, model, config, nnapi = true)
        } catch (e: EngineException) {
            close()
            open(environment, model, config, nnapi = false).let {
                Engine.Loaded(it.engine, "cpu", listOf("cpu"),
                    "NNAPI without its CPU fallback could not load the model (${e.message}); ran on CPU")
            }
        }
    }

    private fun open(environment: OrtEnvironment, model: Path, config: RunConfig, nnapi: Boolean): Engine.Loaded {
        var used = "cpu"
        var reason: String? = null
        val options = OrtSession.SessionOptions()
        modelPath = model
        onNnapi = nnapi
        try {
            reason = configure(options, config, nnapi)
            if (nnapi) used = config.accelerator
            val opened = environment.createSession(model.toString(), options)
            session = opened
            inputName = opened.inputNames.firstOrNull()
                ?: throw EngineException("model_load", "the ONNX model has no input")
            val info = opened.inputInfo[inputName]?.info as? TensorInfo
                ?: throw EngineException("model_load", "input $inputName is not a tensor")
            if (info.type != OnnxJavaType.FLOAT) {
                throw EngineException("model_load", "input $inputName is ${info.type}; the benchmark feeds float32")
            }
            shape = resolveShape(info.shape, config)
        } catch (e: OrtException) {
            throw EngineException("model_load", "ONNX Runtime: ${e.message}", e)
        } finally {
            options.close()
        }
        return Engine.Loaded("onnxruntime", used, if (nnapi) listOf("cpu", config.accelerator) else listOf("cpu"), reason)
    }

    /** The providers and threads of a session; returns what the result should say about them. */
    private fun configure(options: OrtSession.SessionOptions, config: RunConfig, nnapi: Boolean): String? {
        if (nnapi) {
            options.setIntraOpNumThreads(config.threads)
            options.addNnapi(EnumSet.of(NNAPIFlags.CPU_DISABLED))
            return "NNAPI (CPU disabled) chose the device itself: GPU or NPU, whichever its drivers offer; " +
                "ops NNAPI does not take run on ONNX Runtime's CPU kernels (placement counts them)"
        }
        return try {
            // ORT's XNNPACK guidance: XNNPACK gets the threads, ORT's own pool 1 without spinning,
            // so `threads` is what ran (two pools of `threads` each would oversubscribe the cores)
            options.addXnnpack(mapOf("intra_op_num_threads" to config.threads.toString()))
            options.setIntraOpNumThreads(1)
            options.addConfigEntry("session.intra_op.allow_spinning", "0")
            null
        } catch (e: OrtException) {
            options.setIntraOpNumThreads(config.threads)
            "ONNX Runtime's XNNPACK provider is not in this build (${e.message}); ran on its CPU kernels"
        }
    }

    /**
     * A second session, configured as the timed one but with ONNX Runtime's profiler on, runs the
     * written input once after the timed runs (profiling slows every run it is on): its node events
     * name the provider that ran each node and the kernel time per op.
     */
    override fun placement(config: RunConfig): Placement {
        val environment = env ?: throw EngineException("placement", "model not loaded")
        val model = modelPath ?: throw EngineException("placement", "model not loaded")
        val input = tensor ?: throw EngineException("placement", "no input written")
        val options = OrtSession.SessionOptions()
        try {
            configure(options, config, onNnapi)
            options.enableProfiling(model.resolveSibling("ort_profile").toString())
            environment.createSession(model.toString(), options).use { profiled ->
                profiled.run(mapOf(inputName to input)).use { }
                val written = java.io.File(profiled.endProfiling())
                try {
                    if (written.length() > MAX_PROFILE_BYTES) {
                        throw EngineException("placement", "ONNX Runtime's profile is ${written.length()} bytes")
                    }
                    val bytes = written.readBytes()
                    profileJson = bytes
                    return Placement.fromOrtProfile(String(bytes, Charsets.UTF_8))
                } finally {
                    written.delete()
                }
            }
        } catch (e: OrtException) {
            throw EngineException("placement", "ONNX Runtime profiling: ${e.message}", e)
        } finally {
            options.close()
        }
    }

    override fun profile(resultDir: Path): String {
        val bytes = profileJson ?: throw EngineException("profile", "no ONNX Runtime profile was recorded")
        AtomicFiles.write(resultDir.resolve("profile.ort.json"), bytes)
        return "profile.ort.json"
    }

    // a symbolic dimension (a dynamic batch) is -1 in the model: the pushed input's own size fills it
    private fun resolveShape(declared: LongArray, config: RunConfig): LongArray {
        if (declared.all { it >= 0 }) return declared
        val pushed = config.inputs[0].shape
        if (pushed.size != declared.size) {
            throw EngineException("input_mismatch", "the model's input has ${declared.size} dimensions, the pushed input ${pushed.size}")
        }
        return LongArray(declared.size) { i -> if (declared[i] < 0) pushed[i].toLong() else declared[i] }
    }

    override fun inputSpec(file: String): TensorSpec = TensorSpec(file, "float32", shape.map { it.toInt() }.toIntArray())

    private var inBuf: FloatBuffer? = null

    // one direct buffer and one tensor over it for the whole run: nothing is allocated per
    // iteration (garbage would make GC pauses overlap the timed invokes); ORT reads a direct,
    // native-order buffer in place
    override fun write(input: ByteArray) {
        val environment = env ?: throw EngineException("inference", "model not loaded")
        val floats = input.size / 4
        val buf = inBuf ?: ByteBuffer.allocateDirect(input.size).order(ByteOrder.nativeOrder()).asFloatBuffer()
            .also { inBuf = it }
        if (buf.capacity() != floats) {
            throw EngineException("input_mismatch", "input has ${input.size} bytes, the first had ${buf.capacity() * 4}")
        }
        buf.rewind()
        buf.put(ByteBuffer.wrap(input).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()).rewind()
        if (tensor == null) {
            tensor = try {
                OnnxTensor.createTensor(environment, buf, shape)
            } catch (e: OrtException) {
                throw EngineException("input_mismatch", e.message ?: "input rejected", e)
            }
        }
    }

    override fun invoke() {
        val opened = session ?: throw EngineException("inference", "model not loaded")
        val input = tensor ?: throw EngineException("inference", "no input written")
        result?.close()
        result = try {
            opened.run(mapOf(inputName to input))
        } catch (e: OrtException) {
            throw EngineException("inference", e.message ?: "ONNX Runtime run failed", e)
        }
    }

    override fun read(): List<Engine.Output> {
        val outputs = result ?: throw EngineException("inference", "nothing was run")
        return (0 until outputs.size()).map { i ->
            val value = outputs.get(i) as? OnnxTensor
                ?: throw EngineException("inference", "output $i is not a tensor")
            val shape = value.info.shape.map { it.toInt() }.toIntArray()
            // each typed getter returns null for a tensor of another type: choose by type
            when (value.info.type) {
                OnnxJavaType.FLOAT, OnnxJavaType.FLOAT16, OnnxJavaType.BFLOAT16 -> {
                    val buffer = value.floatBuffer ?: throw EngineException("inference", "output $i has no float data")
                    Engine.Output("float32", shape, Bytes.ofFloats(FloatArray(buffer.remaining()).also { buffer.get(it) }))
                }
                OnnxJavaType.INT32 -> {
                    val buffer = value.intBuffer ?: throw EngineException("inference", "output $i has no int32 data")
                    Engine.Output("int32", shape, Bytes.ofInts(IntArray(buffer.remaining()).also { buffer.get(it) }))
                }
                OnnxJavaType.INT8, OnnxJavaType.UINT8 -> {
                    val buffer = value.byteBuffer ?: throw EngineException("inference", "output $i has no data")
                    val dtype = if (value.info.type == OnnxJavaType.INT8) "int8" else "uint8"
                    Engine.Output(dtype, shape, ByteArray(buffer.remaining()).also { buffer.get(it) })
                }
                else -> throw EngineException(
                    "inference",
                    "output $i is ${value.info.type}: not in the protocol (float32, int8, uint8, int32)",
                )
            }
        }
    }

    override fun close() {
        result?.close()
        result = null
        tensor?.close()
        tensor = null
        try {
            session?.close()
        } catch (_: OrtException) {
            // closing a session that failed to run: nothing left to report
        }
        session = null
    }
}
