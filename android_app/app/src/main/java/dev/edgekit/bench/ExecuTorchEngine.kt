package dev.edgekit.bench

import dev.edgekit.bench.core.Engine
import dev.edgekit.bench.core.EngineException
import dev.edgekit.bench.core.RunConfig
import dev.edgekit.bench.core.TensorSpec
import java.nio.file.Path
import org.pytorch.executorch.DType
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

/**
 * ExecuTorch (executorch-android) on `.pte` files. What runs on XNNPACK was decided when the
 * file was lowered on the host (the rest runs on ExecuTorch's portable kernels), so GPU and NPU
 * requests fall back to CPU with the reason: they need a Vulkan or QNN export. The input shape
 * is the one config.json declares (the host read it from the .pte); a mismatch fails in forward.
 * The file is mmap-ed (the default load mode reads it all into anonymous memory, which the
 * memory figures would count), the config's thread count is handed to the runtime (its default
 * is half the cores), and `forward` is loaded inside `load` so method and XNNPACK
 * initialisation count in load_ms, not in the first inference.
 */
class ExecuTorchEngine : Engine {
    private var module: Module? = null
    private var shape = LongArray(0)
    private var input: EValue? = null
    private var outputs: Array<EValue> = emptyArray()

    override fun load(model: Path, config: RunConfig): Engine.Loaded {
        module = try {
            Module.load(model.toString(), Module.LOAD_MODE_MMAP, config.threads).also { it.loadMethod("forward") }
        } catch (e: Exception) {
            throw EngineException("model_load", "ExecuTorch: ${e.message}", e)
        }
        shape = config.inputs[0].shape.map { it.toLong() }.toLongArray()
        val reason = if (config.accelerator != "cpu") {
            "this .pte was lowered for XNNPACK (CPU); ${config.accelerator.uppercase()} needs a Vulkan or QNN export"
        } else {
            null
        }
        return Engine.Loaded("executorch", "cpu", listOf("cpu"), reason)
    }

    override fun inputSpec(file: String): TensorSpec = TensorSpec(file, "float32", shape.map { it.toInt() }.toIntArray())

    private var inBuf: java.nio.FloatBuffer? = null

    // one direct buffer, tensor and EValue for the whole run (the tensor reads the buffer in
    // place): nothing allocated per iteration for GC to collect during the timed invokes
    override fun write(input: ByteArray) {
        val floats = input.size / 4
        val buf = inBuf ?: Tensor.allocateFloatBuffer(floats).also { inBuf = it }
        if (buf.capacity() != floats) {
            throw EngineException("input_mismatch", "input has ${input.size} bytes, the first had ${buf.capacity() * 4}")
        }
        buf.rewind()
        buf.put(java.nio.ByteBuffer.wrap(input).order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer()).rewind()
        if (this.input == null) {
            this.input = try {
                EValue.from(Tensor.fromBlob(buf, shape))
            } catch (e: IllegalArgumentException) {
                throw EngineException("input_mismatch", e.message ?: "input rejected", e)
            }
        }
    }

    override fun invoke() {
        val loaded = module ?: throw EngineException("inference", "model not loaded")
        val value = input ?: throw EngineException("inference", "no input written")
        outputs = try {
            loaded.forward(value)
        } catch (e: Exception) {
            throw EngineException("inference", e.message ?: "ExecuTorch forward failed", e)
        }
    }

    // each dataAs* getter throws unless the tensor has that dtype: pick by dtype
    override fun read(): List<Engine.Output> = outputs.filter { it.isTensor }.map { value ->
        val tensor = value.toTensor()
        val shape = tensor.shape().map { it.toInt() }.toIntArray()
        when (tensor.dtype()) {
            DType.FLOAT -> Engine.Output("float32", shape, Bytes.ofFloats(tensor.dataAsFloatArray))
            DType.INT8 -> Engine.Output("int8", shape, tensor.dataAsByteArray)
            DType.UINT8 -> Engine.Output("uint8", shape, tensor.dataAsUnsignedByteArray)
            DType.INT32 -> Engine.Output("int32", shape, Bytes.ofInts(tensor.dataAsIntArray))
            else -> throw EngineException(
                "inference",
                "output dtype ${tensor.dtype()} is not in the protocol (float32, int8, uint8, int32)",
            )
        }
    }

    // ETDump: ExecuTorch's per-op event trace, written only by runtimes built with the event tracer
    override fun profile(resultDir: Path): String {
        val m = module ?: throw EngineException("profile", "model not loaded")
        val name = "profile.etdump"
        if (!m.etdump(resultDir.resolve(name).toString())) {
            throw EngineException(
                "profile",
                "executorch-android wrote no ETDump (the published AAR may be built without the event tracer)",
            )
        }
        return name
    }

    override fun close() {
        module?.destroy()
        module = null
    }
}
