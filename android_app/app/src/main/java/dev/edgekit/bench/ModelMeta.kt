package dev.edgekit.bench

import dev.edgekit.bench.core.EngineException
import dev.edgekit.bench.core.TensorSpec
import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter

/** dtype and shape of one model tensor, in the protocol's names. */
data class TensorMeta(val dtype: String, val shape: IntArray) {
    val byteSize: Int
        get() = shape.fold(1) { acc, d -> acc * d } * TensorSpec.itemSize(dtype)

    fun spec(file: String): TensorSpec = TensorSpec(file, dtype, shape)
}

/**
 * The model's input and output tensors, read once with the classic Interpreter (the
 * CompiledModel API exposes buffers, not their types), in Engine.inspect: before the timed load,
 * so neither load_ms nor the memory after load counts this Interpreter. It runs without XNNPACK
 * (nothing is packed), and the loop takes an `after_inspect` memory snapshot, so what loading
 * the model costs is `after_load` minus `after_inspect`.
 */
class ModelMeta private constructor(val inputs: List<TensorMeta>, val outputs: List<TensorMeta>) {
    companion object {
        fun read(file: File): ModelMeta {
            try {
                // no XNNPACK: its packed weights would raise the process's VmHWM before the timed load
                Interpreter(file, Interpreter.Options().setNumThreads(1).setUseXNNPACK(false)).use { interp ->
                    val ins = (0 until interp.inputTensorCount).map { i ->
                        val t = interp.getInputTensor(i)
                        TensorMeta(dtypeName(t.dataType()), t.shape())
                    }
                    val outs = (0 until interp.outputTensorCount).map { i ->
                        val t = interp.getOutputTensor(i)
                        TensorMeta(dtypeName(t.dataType()), t.shape())
                    }
                    if (ins.size != 1) {
                        throw EngineException("model_load", "the benchmark supports single-input models, this one has ${ins.size}")
                    }
                    return ModelMeta(ins, outs)
                }
            } catch (e: EngineException) {
                throw e
            } catch (e: Exception) {
                throw EngineException("model_load", "cannot read ${file.name}: ${e.message}", e)
            }
        }

        private fun dtypeName(t: DataType): String = when (t) {
            DataType.FLOAT32 -> "float32"
            DataType.INT8 -> "int8"
            DataType.UINT8 -> "uint8"
            DataType.INT32 -> "int32"
            else -> throw EngineException("model_load", "tensor type $t is not supported by the protocol")
        }
    }
}

/** Little-endian byte conversions between protocol files and typed arrays. */
internal object Bytes {
    private fun le(data: ByteArray): ByteBuffer = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN)

    fun toFloats(data: ByteArray): FloatArray = FloatArray(data.size / 4).also { le(data).asFloatBuffer().get(it) }

    fun toInts(data: ByteArray): IntArray = IntArray(data.size / 4).also { le(data).asIntBuffer().get(it) }

    fun ofFloats(values: FloatArray): ByteArray =
        ByteBuffer.allocate(values.size * 4).order(ByteOrder.LITTLE_ENDIAN).also { it.asFloatBuffer().put(values) }.array()

    fun ofInts(values: IntArray): ByteArray =
        ByteBuffer.allocate(values.size * 4).order(ByteOrder.LITTLE_ENDIAN).also { it.asIntBuffer().put(values) }.array()
}
