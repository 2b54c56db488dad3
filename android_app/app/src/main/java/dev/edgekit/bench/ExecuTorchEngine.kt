package dev.edgekit.bench

import dev.edgekit.bench.core.Engine
import dev.edgekit.bench.core.EngineException
import dev.edgekit.bench.core.RunConfig
import dev.edgekit.bench.core.TensorSpec
import java.nio.file.Path
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

/**
 * ExecuTorch (executorch-android) on `.pte` files. What runs on XNNPACK was decided when the
 * file was lowered on the host (the rest runs on ExecuTorch's portable kernels), so GPU and NPU
 * requests fall back to CPU with the reason: they need a Vulkan or QNN export. The input shape
 * is the one config.json declares (the host read it from the .pte); a mismatch fails in forward.
 */
class ExecuTorchEngine : Engine {
    private var module: Module? = null
    private var shape = LongArray(0)
    private var input: EValue? = null
    private var outputs: Array<EValue> = emptyArray()

    override fun load(model: Path, config: RunConfig): Engine.Loaded {
        module = try {
            Module.load(model.toString())
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

    override fun write(input: ByteArray) {
        this.input = EValue.from(Tensor.fromBlob(Bytes.toFloats(input), shape))
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

    override fun read(): List<Engine.Output> = outputs.filter { it.isTensor }.map { value ->
        val tensor = value.toTensor()
        Engine.Output(
            "float32",
            tensor.shape().map { it.toInt() }.toIntArray(),
            Bytes.ofFloats(tensor.dataAsFloatArray),
        )
    }

    override fun close() {
        module?.destroy()
        module = null
    }
}
