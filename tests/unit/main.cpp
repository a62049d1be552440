// The unit tests' main(), instead of gtest_main's: Debian 12's
// libwebrtc_audio_processing.so (0.3) exports a main() of its own (a tool's),
// and which main() a test program linking it gets would otherwise depend on
// the order the build lists the libraries in (meson's order picked the
// library's, and the tests never ran). A main() in an object file always wins.
#include <gtest/gtest.h>

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
