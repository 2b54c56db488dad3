package dev.edgekit.bench

import android.content.Context
import android.os.Build
import com.google.ai.edge.litert.Accelerator
import com.google.ai.edge.litert.CompiledModel
import com.google.ai.edge.litert.Environment
import com.google.ai.edge.litert.LiteRtException
import com.google.ai.edge.litert.TensorBuffer
import dev.edgekit.bench.core.Engine
import dev.edgekit.bench.core.EngineException
import dev.edgekit.bench.core.Placement
import dev.edgekit.bench.core.RunConfig
import dev.edgekit.bench.core.TensorSpec
import java.nio.file.Path

/**
 * LiteRT's CompiledModel API on the requested accelerator. Asking for an accelerator the
 * environment does not offer, or one that fails to compile the model, falls back to CPU and
 * says why: a fallback is a recorded fact, never silent.
 */
class LiteRtEngine(private val context: Context) : Engine {
    private var env: Environment? = null
    private var model: CompiledModel? = null
    private var inputBuffers: List<TensorBuffer> = emptyList()
    private var outputBuffers: List<TensorBuffer> = emptyList()
    private lateinit var meta: ModelMeta

    override fun inspect(model: Path, config: RunConfig) {
        meta = ModelMeta.read(model.toFile()) // outside the timed load
    }

    override fun load(model: Path, config: RunConfig): Engine.Loaded {
        val environment = try {
            Environment.create(context)
        } catch (e: LiteRtException) {
            throw EngineException("model_load", "LiteRT environment: ${e.message}", e)
        }
        env = environment
        val available = try {
            environment.getAvailableAccelerators().map { it.name.lowercase() }.sorted()
        } catch (e: LiteRtException) {
            throw EngineException("model_load", "LiteRT accelerators: ${e.message}", e)
        }
        var used = config.accelerator
        var reason: String? = null
        if (used == "npu" && Build.VERSION.SDK_INT < 36) {
            reason = "the Tensor G4 NPU through LiteRT needs Android 16 (API 36) and a model compiled ahead of time " +
                "for the SoC; this device runs API ${Build.VERSION.SDK_INT}"
            used = "cpu"
        } else if (used !in available) {
            reason = "$used accelerator not available (available: ${available.joinToString()})" +
                if (used == "gpu") "; is the litert-gpu library packaged?" else ""
            used = "cpu"
        }
        val compiled = try {
            compile(model, used, config)
        } catch (e: LiteRtException) {
            if (used == "cpu") throw EngineException("model_load", "CPU compilation failed: ${e.message}", e)
            reason = "$used compilation failed (${e.message}); ran on CPU"
            used = "cpu"
            try {
                compile(model, used, config)
            } catch (e2: LiteRtException) {
                throw EngineException("model_load", "CPU compilation failed: ${e2.message}", e2)
            }
        }
        this.model = compiled
        try {
            inputBuffers = compiled.createInputBuffers()
            outputBuffers = compiled.createOutputBuffers()
        } catch (e: LiteRtException) {
            throw EngineException("model_load", "LiteRT buffers: ${e.message}", e)
        }
        return Engine.Loaded("compiled_model", used, available, reason)
    }

    private fun compile(path: Path, accelerator: String, config: RunConfig): CompiledModel {
        val options = when (accelerator) {
            // GPU with CPU: ops the GPU delegate rejects run on CPU instead of failing the model
            "gpu" -> CompiledModel.Options(Accelerator.GPU, Accelerator.CPU).apply {
                gpuOptions = CompiledModel.GpuOptions(
                    precision = if (config.gpuPrecision == "fp16") {
                        CompiledModel.GpuOptions.Precision.FP16
                    } else {
                        CompiledModel.GpuOptions.Precision.FP32
                    },
                )
            }
            "npu" -> CompiledModel.Options(Accelerator.NPU)
            else -> CompiledModel.Options(Accelerator.CPU).apply {
                cpuOptions = CompiledModel.CpuOptions(numThreads = config.threads)
            }
        }
        return CompiledModel.create(path.toString(), options, env)
    }

    override fun inputSpec(file: String): TensorSpec = meta.inputs[0].spec(file)

    // the Kotlin CompiledModel has no IsFullyAccelerated: LiteRT's own delegation lines in logcat
    override fun placement(config: RunConfig): Placement? = DelegationLog.placement()

    override fun write(input: ByteArray) {
        val want = meta.inputs[0]
        if (input.size != want.byteSize) {
            throw EngineException("input_mismatch", "input has ${input.size} bytes, the model wants ${want.byteSize}")
        }
        try {
            val buffer = inputBuffers[0]
            when (want.dtype) {
                "float32" -> buffer.writeFloat(Bytes.toFloats(input))
                "int8", "uint8" -> buffer.writeInt8(input)
                "int32" -> buffer.writeInt(Bytes.toInts(input))
                else -> throw EngineException("input_mismatch", "unsupported input type ${want.dtype}")
            }
        } catch (e: LiteRtException) {
            throw EngineException("inference", e.message ?: "LiteRT input write failed", e)
        }
    }

    override fun invoke() {
        val compiled = model ?: throw EngineException("inference", "model not loaded")
        try {
            compiled.run(inputBuffers, outputBuffers)
        } catch (e: LiteRtException) {
            throw EngineException("inference", e.message ?: "LiteRT run failed", e)
        }
    }

    override fun read(): List<Engine.Output> {
        try {
            return outputBuffers.mapIndexed { i, out ->
                val m = meta.outputs[i]
                val data = when (m.dtype) {
                    "float32" -> Bytes.ofFloats(out.readFloat())
                    "int8", "uint8" -> out.readInt8()
                    "int32" -> Bytes.ofInts(out.readInt())
                    else -> throw EngineException("inference", "unsupported output type ${m.dtype}")
                }
                Engine.Output(m.dtype, m.shape, data)
            }
        } catch (e: LiteRtException) {
            throw EngineException("inference", e.message ?: "LiteRT output read failed", e)
        }
    }

    override fun close() {
        (inputBuffers + outputBuffers).forEach { it.close() }
        inputBuffers = emptyList()
        outputBuffers = emptyList()
        model?.close()
        model = null
        env?.close()
        env = null
    }
}
