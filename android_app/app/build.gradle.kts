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

    kotlinOptions {
        jvmTarget = "11"
    }

    packaging {
        jniLibs.useLegacyPackaging = true
    }
}

dependencies {
    implementation(project(":core"))
    implementation(libs.litert)
    // From LiteRT 2.3.0 the GPU accelerator is a separate artifact; without it GPU silently means CPU.
    implementation(libs.litert.gpu)
}
