// Compile-time stubs of the LiteRT 2.x Kotlin API the app calls, written from the public
// signatures of LiteRT v2.2.0 (litert/kotlin/.../Model.kt, Environment.kt, TensorBuffer.kt,
// Common.kt, LiteRtException.kt). Bodies do nothing: these only let `make test` compile the
// app's Kotlin and catch typos and API misuse; the APK links the real library.
package com.google.ai.edge.litert

import android.content.Context

enum class Accelerator(val value: Int) { NONE(0), CPU(1), GPU(2), NPU(3) }

class LiteRtException(message: String) : Exception(message)

abstract class JniHandle : AutoCloseable {
    protected abstract fun destroy()

    final override fun close() = destroy()
}

class TensorBuffer : JniHandle() {
    override fun destroy() {}

    @Throws(LiteRtException::class) fun writeInt(data: IntArray) {}

    @Throws(LiteRtException::class) fun writeFloat(data: FloatArray) {}

    @Throws(LiteRtException::class) fun writeInt8(data: ByteArray) {}

    @Throws(LiteRtException::class) fun readInt(): IntArray = IntArray(0)

    @Throws(LiteRtException::class) fun readFloat(): FloatArray = FloatArray(0)

    @Throws(LiteRtException::class) fun readInt8(): ByteArray = ByteArray(0)
}

class Environment private constructor() : JniHandle() {
    enum class Option(val value: Int) { CompilerPluginLibraryDir(0), DispatchLibraryDir(1) }

    override fun destroy() {}

    @Throws(LiteRtException::class) fun getAvailableAccelerators(): Set<Accelerator> = emptySet()

    companion object {
        @Throws(LiteRtException::class)
        @JvmStatic
        fun create(
            context: Context,
            options: Map<Option, String> = mapOf(),
            enableCompilerCache: Boolean = true,
        ): Environment = Environment()

        @Throws(LiteRtException::class)
        @JvmStatic
        fun create(options: Map<Option, String> = mapOf()): Environment = Environment()
    }
}

class CompiledModel private constructor() : JniHandle() {
    data class CpuOptions(
        val numThreads: Int? = null,
        val xnnPackFlags: Int? = null,
        val xnnPackWeightCachePath: String? = null,
    )

    data class GpuOptions(
        val precision: Precision? = null,
    ) {
        enum class Precision(val value: Int) { DEFAULT(0), FP16(1), FP32(2), FP16_WITH_FP32_ACCUM(3) }
    }

    class Options(val accelerators: Set<Accelerator>) {
        constructor(vararg accelerators: Accelerator) : this(setOf(*accelerators))

        var cpuOptions: CpuOptions? = null
        var gpuOptions: GpuOptions? = null
    }

    override fun destroy() {}

    @Throws(LiteRtException::class)
    fun createInputBuffers(signatureIndex: Int = 0): List<TensorBuffer> = emptyList()

    @Throws(LiteRtException::class)
    fun createOutputBuffers(signatureIndex: Int = 0): List<TensorBuffer> = emptyList()

    @Throws(LiteRtException::class)
    fun run(inputs: List<TensorBuffer>, outputs: List<TensorBuffer>, signatureIndex: Int = 0) {}

    companion object {
        @Throws(LiteRtException::class)
        @JvmStatic
        fun create(filePath: String, options: Options = Options(Accelerator.CPU), optionalEnv: Environment? = null): CompiledModel =
            CompiledModel()
    }
}
