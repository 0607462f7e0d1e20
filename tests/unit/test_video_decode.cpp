// The FFmpeg video reader: errors that name the file, seeking that lands on the same frames as decoding from the
// start, and the streaming property (one full-resolution RGB buffer, only the wanted frames converted).
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "test_util.h"
#include "vision/video_decode.h"
#include "vision/video_processor.h"

namespace qwen3vl {
namespace {

std::string video(const std::string& name) { return testing::fixtures_dir() + "/videos/" + name; }

// The Error message of opening `path` (empty when it opens).
std::string open_error(const std::string& path) {
  try {
    VideoReader reader(path);
    ProcessedVideo v = preprocess_video_file(path, VideoProcessorConfig{});
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(VideoDecodeErrors, MissingAndEmptyFiles) {
  testing::TempDir dir;
  EXPECT_EQ(open_error(dir.file("nope.mp4")), dir.file("nope.mp4") + ": cannot open video file (no such file)");
  testing::write_file(dir.file("empty.mp4"), "");
  EXPECT_EQ(open_error(dir.file("empty.mp4")), dir.file("empty.mp4") + ": empty file (0 bytes), not a video");
}

TEST(VideoDecodeErrors, CorruptFile) {
  testing::TempDir dir;
  std::string junk(20000, '\0');
  uint32_t state = 7;
  for (char& c : junk) c = static_cast<char>((state = state * 1664525u + 1013904223u) >> 24);
  testing::write_file(dir.file("junk.mp4"), junk);
  const std::string message = open_error(dir.file("junk.mp4"));
  EXPECT_EQ(message.rfind(dir.file("junk.mp4") + ": ", 0), 0u) << message;
  EXPECT_NE(message.find("not a readable video file"), std::string::npos) << message;
}

TEST(VideoDecodeErrors, TruncatedFiles) {
  testing::TempDir dir;
  // MP4 with its index (moov) at the end: cut in half, the index is gone.
  const std::string mp4 = testing::read_file(video("cfr24_3s.mp4"));
  testing::write_file(dir.file("half.mp4"), mp4.substr(0, mp4.size() / 2));
  std::string message = open_error(dir.file("half.mp4"));
  EXPECT_EQ(message.rfind(dir.file("half.mp4") + ": ", 0), 0u) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  // Matroska cut in half: the header promises 10 s, the data holds about 5.
  const std::string mkv = testing::read_file(video("cfr25_10s.mkv"));
  testing::write_file(dir.file("half.mkv"), mkv.substr(0, mkv.size() / 2));
  message = open_error(dir.file("half.mkv"));
  EXPECT_EQ(message.rfind(dir.file("half.mkv") + ": ", 0), 0u) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
}

TEST(VideoDecodeErrors, NoVideoStream) {
  EXPECT_EQ(open_error(video("audio_only.mka")), video("audio_only.mka") + ": the file has no video stream");
}

TEST(VideoDecodeErrors, ZeroLengthVideo) {
  // Y4M is not one of the containers a reader opens by default; allowed explicitly, its empty stream is reported.
  VideoReaderLimits y4m;
  y4m.formats = "yuv4mpegpipe";
  try {
    VideoReader reader(video("zero_frames.y4m"), VideoMetadataSource::Scan, y4m);
    ADD_FAILURE() << "a video without frames opened";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()),
              video("zero_frames.y4m") + ": the video stream holds no frames (zero-length video)");
  }
  EXPECT_NE(open_error(video("zero_frames.y4m")).find("not one of the containers"), std::string::npos);
}

// Playlist demuxers open further files named inside the file (FFmpeg's hls and concat); with the format whitelist
// a playlist is refused at open, whatever its name, even though each would open here without it.
TEST(VideoDecodeErrors, PlaylistsAreRefused) {
  testing::TempDir dir;
  testing::write_file(dir.file("clip.mp4"), testing::read_file(video("cfr24_3s.mp4")));
  testing::write_file(dir.file("list.ffconcat"), "ffconcat version 1.0\nfile clip.mp4\n");
  testing::write_file(dir.file("list.m3u8"), "#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3,\nfile:" +
                                                 dir.file("clip.mp4") + "\n#EXT-X-ENDLIST\n");
  testing::write_file(dir.file("no_extension"), testing::read_file(dir.file("list.m3u8")));
  for (const std::string name : {"list.ffconcat", "list.m3u8", "no_extension"}) {
    const std::string message = open_error(dir.file(name));
    EXPECT_EQ(message.rfind(dir.file(name) + ": not a readable video file", 0), 0u) << message;
  }
  VideoReaderLimits concat;
  concat.formats = "concat,mov,mp4,m4a,3gp,3g2,mj2";
  EXPECT_EQ(VideoReader(dir.file("list.ffconcat"), VideoMetadataSource::Scan, concat).info().frame_count, 72);
}

TEST(VideoDecodeErrors, DeadlineStopsReading) {
  VideoReaderLimits past;
  past.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  try {
    VideoReader reader(video("cfr24_3s.mp4"), VideoMetadataSource::Scan, past);
    ADD_FAILURE() << "read past its deadline";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), video("cfr24_3s.mp4") + ": reading the video took longer than its time limit");
  }
}

TEST(VideoDecode, ReadsTheBestVideoStreamAfterAnAudioOne) {
  const VideoReader reader(video("cfr25_10s.mkv"));
  EXPECT_EQ(reader.info().stream_index, 1);
  EXPECT_EQ(reader.info().frame_count, 250);
  EXPECT_EQ(reader.info().fps, 25.0);
  EXPECT_EQ(reader.info().codec, "h264");
}

TEST(VideoDecode, HeaderMetadataIsPyAvs) {
  const VideoReader vfr(video("vfr_4s.mp4"), VideoMetadataSource::Header);
  EXPECT_EQ(vfr.info().frame_count, 80);
  EXPECT_EQ(vfr.info().fps, 80 / 3.8);                  // avg_frame_rate 400/19
  EXPECT_EQ(vfr.info().scan_fps, 80 / (60416 / 15360.0));  // torchcodec: 20.338...
  EXPECT_THROW(VideoReader(video("cfr30_40s.webm"), VideoMetadataSource::Header), Error);  // no count in WebM
}

// Every frame read alone (with seeks) equals the same frame read in one pass from the start.
TEST(VideoDecode, SeekingLandsOnTheSameFrames) {
  for (const char* name : {"cfr30_40s.webm", "size100x60_5s.avi", "cfr24_3s.mp4", "odd5_2.5s.gif"}) {
    SCOPED_TRACE(name);
    VideoReader all(video(name));
    const int64_t n = all.info().frame_count;
    const std::vector<int64_t> picks = {n - 1, n / 2, 1, n / 3 * 2};
    std::vector<std::vector<uint8_t>> sequential(static_cast<size_t>(n));
    std::vector<int64_t> every(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) every[static_cast<size_t>(i)] = i;
    all.read_frames(every, [&](size_t, int64_t i, const Image& f) { sequential[static_cast<size_t>(i)] = f.rgb; });
    EXPECT_EQ(all.stats().frames_converted, n);
    for (int64_t pick : picks) {
      VideoReader one(video(name));
      one.read_frames({pick, pick}, [&](size_t, int64_t i, const Image& f) {
        EXPECT_EQ(f.rgb, sequential[static_cast<size_t>(i)]) << "frame " << i;
      });
      EXPECT_EQ(one.stats().frames_converted, 1);  // the repeat is delivered from the buffer
    }
  }
}

// Streaming by construction: frames arrive one at a time in one reused RGB buffer, only the sampled ones are
// converted, and the processor keeps only resized frames. 80 of 1200 frames of the 40 s file.
TEST(VideoDecode, StreamsOneFullResolutionFrameAtATime) {
  VideoReader reader(video("cfr30_40s.webm"));
  const SampledFrames sampled = sample_frames(reader.info().frame_count, reader.info().fps, {}, {}, "webm");
  ASSERT_EQ(sampled.indices.size(), 80u);
  const uint8_t* buffer = nullptr;
  size_t calls = 0;
  reader.read_frames(sampled.indices, [&](size_t k, int64_t index, const Image& frame) {
    EXPECT_EQ(k, calls++);
    EXPECT_EQ(index, sampled.indices[k]);
    if (!buffer) buffer = frame.rgb.data();
    EXPECT_EQ(frame.rgb.data(), buffer);  // the same buffer every time
  });
  EXPECT_EQ(calls, 80u);
  EXPECT_EQ(reader.stats().rgb_buffers_allocated, 1);
  EXPECT_EQ(reader.stats().frames_converted, 80);
  EXPECT_LE(reader.stats().frames_decoded, 1200);
  EXPECT_GT(reader.stats().seeks, 0);  // keyframes every 150 frames: later ones are reached by seeking
}

}  // namespace
}  // namespace qwen3vl
