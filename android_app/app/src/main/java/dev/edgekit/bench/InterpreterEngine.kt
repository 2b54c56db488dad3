package dev.edgekit.bench

import dev.edgekit.bench.core.Engine
import dev.edgekit.bench.core.EngineException
import dev.edgekit.bench.core.Placement
import dev.edgekit.bench.core.RunConfig
import dev.edgekit.bench.core.TensorSpec
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.file.Path
import org.tensorflow.lite.Interpreter

/**
 * The classic Interpreter (XNNPACK on CPU): a second engine to cross-check CompiledModel. Its
 * runForMultipleInputsOutputs copies the inputs in and the outputs out inside the call, so the
 * timed figure is the Interpreter's own native inference timer, not the call's duration.
 */
class InterpreterEngine : Engine {
    private var interpreter: Interpreter? = null
    private lateinit var meta: ModelMeta

    override fun inspect(model: Path, config: RunConfig) {
        check(ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) { "protocol tensors are little-endian" }
        meta = ModelMeta.read(model.toFile()) // outside the timed load
    }

    override fun load(model: Path, config: RunConfig): Engine.Loaded {
        interpreter = try {
            Interpreter(model.toFile(), Interpreter.Options().setNumThreads(config.threads))
        } catch (e: Exception) {
            throw EngineException("model_load", "Interpreter: ${e.message}", e)
        }
        val reason = if (config.accelerator != "cpu") {
            "the interpreter engine runs on CPU (XNNPACK) only; use engine compiled_model for ${config.accelerator}"
        } else {
            null
        }
        return Engine.Loaded("interpreter", "cpu", listOf("cpu"), reason)
    }

    override fun inputSpec(file: String): TensorSpec = meta.inputs[0].spec(file)

    private var inBuf: ByteBuffer? = null
    private var outBufs: List<ByteBuffer> = emptyList()

    override fun write(input: ByteArray) {
        if (input.size != meta.inputs[0].byteSize) {
            throw EngineException("input_mismatch", "input has ${input.size} bytes, the model wants ${meta.inputs[0].byteSize}")
        }
        val buf = inBuf ?: ByteBuffer.allocateDirect(input.size).order(ByteOrder.nativeOrder()).also { inBuf = it }
        buf.rewind()
        buf.put(input).rewind()
        if (outBufs.isEmpty()) {
            outBufs = meta.outputs.map { ByteBuffer.allocateDirect(it.byteSize).order(ByteOrder.nativeOrder()) }
        }
    }

    override fun invoke() {
        val interp = interpreter ?: throw EngineException("inference", "model not loaded")
        val input = inBuf ?: throw EngineException("inference", "no input written")
        outBufs.forEach { it.rewind() }
        try {
            interp.runForMultipleInputsOutputs(arrayOf<Any>(input), outBufs.withIndex().associate { it.index to it.value as Any })
        } catch (e: IllegalArgumentException) {
            throw EngineException("input_mismatch", e.message ?: "input rejected", e)
        } catch (e: Exception) {
            throw EngineException("inference", e.message ?: "Interpreter run failed", e)
        }
    }

    // the Java Interpreter exposes no execution plan: LiteRT's own delegation lines in logcat
    override fun placement(config: RunConfig): Placement? = DelegationLog.placement()

    override fun lastInvokeNanos(): Long? = interpreter?.lastNativeInferenceDurationNanoseconds

    override fun read(): List<Engine.Output> = outBufs.mapIndexed { i, buf ->
        val bytes = ByteArray(buf.capacity())
        buf.rewind()
        buf.get(bytes)
        Engine.Output(meta.outputs[i].dtype, meta.outputs[i].shape, bytes)
    }

    override fun close() {
        interpreter?.close()
        interpreter = null
    }
}
