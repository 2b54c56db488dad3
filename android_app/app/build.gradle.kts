plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "dev.edgekit.bench"
    compileSdk = 36

    defaultConfig {
        applicationId = "dev.edgekit.bench"
        // Pixel 9 shipped with Android 14 (API 34) and runs 15/16; the NPU path needs API 36.
        minSdk = 34
        targetSdk = 36
        versionCode = 1
        versionName = "0.1.0" // must equal Protocol.APP_VERSION: the host reinstalls any other version
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            // A bench tool installed over adb: sign with the debug key so `assembleRelease` installs as is.
            signingConfig = signingConfigs.getByName("debug")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_11
        targetCompatibility = JavaVersion.VERSION_11
    }


    packaging {
        jniLibs.useLegacyPackaging = true
    }
}

// kotlinOptions {} is deprecated (an error from Kotlin 2.3): the compilerOptions DSL replaces it
kotlin {
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_11)
    }
}

dependencies {
    implementation(project(":core"))
    implementation(libs.litert)
    // The GPU accelerator is a separate artifact; without it GPU means CPU (said in fallback_reason).
    // The first build must confirm litert and litert-gpu do not carry the same classes.
    implementation(libs.litert.gpu)
    implementation(libs.onnxruntime.android)
    implementation(libs.executorch.android)
}
