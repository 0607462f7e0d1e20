// Media limits of `qwen3vl serve`: remote fetches only to public addresses (or ranges the operator allows), with
// redirects re-checked hop by hop and errors that never echo the target's answer; per-request byte, fetch and frame
// limits; local files only as regular files inside the allowed folder. Every address a test connects to is on the
// loopback range: 10.0.0.1 and 169.254.169.254 appear only as IP literals that must be refused before any
// connection is attempted (a sentinel server on the loopback address stands in for what must stay unreached).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>

#include "core/error.h"
#include "e2e/server_harness.h"
#include "server/api_error.h"
#include "server/media_fetch.h"
#include "server/media_source.h"
#include "test_util.h"

namespace qwen3vl {
namespace {

using nlohmann::json;
using server::ApiError;
using server::MediaBudget;
using server::MediaSource;
using server::ServerOptions;

// An HTTP server on `address` (a loopback address) that counts the requests it gets. Routes are added between
// construction (which binds) and start().
class LocalSite {
 public:
  explicit LocalSite(const std::string& address) {
    server_.set_logger([this](const httplib::Request&, const httplib::Response&) { ++hits_; });
    port_ = server_.bind_to_any_port(address.c_str());
  }
  ~LocalSite() {
    if (!thread_.joinable()) return;
    for (int i = 0; i < 500 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    server_.stop();
    thread_.join();
  }
  void start() {
    if (port_ > 0) thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  httplib::Server& routes() { return server_; }
  bool up() const { return port_ > 0; }
  int port() const { return port_; }
  int hits() const { return hits_; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = -1;
  std::atomic<int> hits_{0};
};

ServerOptions remote_options(std::vector<std::string> allowed_addresses = {}) {
  ServerOptions options;
  options.allow_remote_media = true;
  options.allowed_media_addresses = std::move(allowed_addresses);
  return options;
}

// The ApiError of loading `url` (status 0 when it loads).
ApiError load_error(const MediaSource& source, const std::string& url, MediaBudget* budget = nullptr) {
  try {
    if (budget)
      source.load(url, "messages[0].content[0]", 1 << 20, *budget);
    else
      source.load(url, "messages[0].content[0]", 1 << 20);
  } catch (const ApiError& error) {
    return error;
  }
  return ApiError(0, "loaded");
}

server::IpAddress ip(const std::string& text) {
  const server::AddressRange range = server::parse_address_range(text, "test");
  return range.base;
}

TEST(ServerMediaLimits, PublicAddressTable) {
  for (const char* address : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "::ffff:8.8.8.8",
                              "64:ff9b::808:808", "2606:4700:4700::1111", "2a00:1450:4001::200e"})
    EXPECT_TRUE(server::is_public_address(ip(address))) << address;
  for (const char* address :
       {"0.0.0.0", "0.1.2.3", "10.0.0.1", "100.64.0.1", "127.0.0.1", "127.255.255.254", "169.254.169.254",
        "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.168.1.1", "198.18.0.1", "198.19.255.255", "224.0.0.1",
        "239.255.255.250", "240.0.0.1", "255.255.255.255", "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1",
        "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1",
        "2001:db8::1", "2001::1", "2002:7f00:1::1", "3fff::1", "100::1"})
    EXPECT_FALSE(server::is_public_address(ip(address))) << address;
}

TEST(ServerMediaLimits, AddressRangesParse) {
  const server::AddressRange ten = server::parse_address_range("10.0.0.0/8", "--allow-media-address");
  EXPECT_TRUE(ten.contains(ip("10.200.3.4")));
  EXPECT_FALSE(ten.contains(ip("11.0.0.1")));
  EXPECT_FALSE(ten.contains(ip("::ffff:10.0.0.1")));  // the fetcher unmaps before matching
  const server::AddressRange one = server::parse_address_range("127.0.0.2", "--allow-media-address");
  EXPECT_TRUE(one.contains(ip("127.0.0.2")));
  EXPECT_FALSE(one.contains(ip("127.0.0.1")));
  EXPECT_TRUE(server::parse_address_range("fd00::/8", "x").contains(ip("fd12::1")));
  for (const char* bad : {"10.0.0.0/33", "10.0.0.0/", "example.com", "::1/129", "10.0.0.0/8x"})
    EXPECT_THROW(server::parse_address_range(bad, "--allow-media-address"), Error) << bad;
  ServerOptions options = remote_options({"not-an-address"});
  try {
    MediaSource source(options);
    ADD_FAILURE() << "a bad --allow-media-address was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("--allow-media-address: \"not-an-address\""), std::string::npos)
        << error.what();
  }
}

TEST(ServerMediaLimits, NonPublicAddressesAreRefusedBeforeConnecting) {
  LocalSite sentinel("127.0.0.1");
  ASSERT_TRUE(sentinel.up());
  sentinel.routes().Get("/.*", [](const httplib::Request&, httplib::Response& res) { res.set_content("x", "image/png"); });
  sentinel.start();
  const std::string port = std::to_string(sentinel.port());
  const MediaSource source(remote_options());
  for (const std::string& url :
       {"http://localhost:" + port + "/a.png", "http://127.0.0.1:" + port + "/a.png", "http://[::1]:" + port + "/",
        "http://[::ffff:127.0.0.1]:" + port + "/", "http://2130706433:" + port + "/", "http://0x7f.1:" + port + "/",
        std::string("http://10.0.0.1/a.png"), std::string("https://10.0.0.1/a.png"),
        std::string("http://169.254.169.254/latest/meta-data/"), std::string("http://[fd00::1]/a.png"),
        std::string("http://0.0.0.0:") + port + "/"}) {
    const ApiError error = load_error(source, url);
    EXPECT_EQ(error.status(), 400) << url << ": " << error.what();
    EXPECT_EQ(error.code(), "media_url_refused") << url << ": " << error.what();
    EXPECT_EQ(error.param(), "messages[0].content[0]");
    EXPECT_NE(std::string(error.what()).find("the URL's host is a loopback, private, link-local or reserved"),
              std::string::npos)
        << error.what();
  }
  EXPECT_EQ(sentinel.hits(), 0);
}

TEST(ServerMediaLimits, BadUrlsNameThePartAtFault) {
  const MediaSource source(remote_options());
  const std::pair<const char*, const char*> cases[] = {
      {"http://user:pw@127.0.0.2/a.png", "carries credentials"},
      {"http://127.0.0.2:99999/a.png", "bad port"},
      {"http://[::1/a.png", "unclosed [IPv6] host"},
      {"http://ex ample.com/a.png", "space or a control character"},
      {"http://exa%6dple.com/a.png", "bad host name"},
  };
  for (const auto& [url, expected] : cases) {
    const ApiError error = load_error(source, url);
    EXPECT_EQ(error.code(), "invalid_media_url") << url;
    EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << url << ": " << error.what();
  }
}

// An opted-in test site on 127.0.0.2 (as an internal deployment would allow its media host), and the ordinary
// loopback address 127.0.0.1 that is not allowed.
class ServerMediaRedirects : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!site_.up() || !internal_.up()) GTEST_SKIP() << "cannot bind 127.0.0.2 and 127.0.0.1";
    png_ = testing::read_file(testing::image_fixture("shapes_70x50.png"));
    const std::string internal_url = "http://127.0.0.1:" + std::to_string(internal_.port()) + "/secret";
    internal_.routes().Get("/secret", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("INTERNAL-SECRET", "text/plain");
    });
    auto& routes = site_.routes();
    routes.Get("/image.png", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(png_, "image/png");
    });
    routes.Get("/to-internal", [internal_url](const httplib::Request&, httplib::Response& res) {
      res.status = 302;
      res.set_header("Location", internal_url);
      res.set_content("REDIRECT-BODY", "text/plain");
    });
    routes.Get("/dir/relative", [](const httplib::Request&, httplib::Response& res) {
      res.status = 307;
      res.set_header("Location", "moved.png");
    });
    routes.Get("/dir/moved.png", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(png_, "image/png");
    });
    routes.Get("/absolute-path", [](const httplib::Request&, httplib::Response& res) {
      res.status = 301;
      res.set_header("Location", "/image.png");
    });
    routes.Get("/loop", [](const httplib::Request&, httplib::Response& res) {
      res.status = 302;
      res.set_header("Location", "/loop");
    });
    routes.Get("/to-ftp", [](const httplib::Request&, httplib::Response& res) {
      res.status = 302;
      res.set_header("Location", "ftp://127.0.0.2/image.png");
    });
    routes.Get("/missing", [](const httplib::Request&, httplib::Response& res) {
      res.status = 404;
      res.set_content("NOT-FOUND-BODY", "text/plain");
    });
    site_.start();
    internal_.start();
  }

  std::string url(const std::string& path) const { return "http://127.0.0.2:" + std::to_string(site_.port()) + path; }

  LocalSite site_{"127.0.0.2"};
  LocalSite internal_{"127.0.0.1"};
  std::string png_;
};

// The error of `url` must not carry anything the target answered.
void expect_no_echo(const ApiError& error) {
  const std::string message = error.what();
  for (const char* echo : {"HTTP 3", "HTTP 4", "Found", "Moved", "REDIRECT-BODY", "NOT-FOUND-BODY",
                           "INTERNAL-SECRET", "/secret", "127.0.0.1", "ftp:", "refused", "Connection"})
    EXPECT_EQ(message.find(echo), std::string::npos) << echo << " in: " << message;
}

TEST_F(ServerMediaRedirects, RedirectToLoopbackIsRefusedWithoutEchoingTheTarget) {
  const MediaSource source(remote_options({"127.0.0.2"}));
  EXPECT_EQ(source.load(url("/image.png"), "image", 1 << 20), png_);  // the opt-in admits the site itself
  const ApiError refused = load_error(source, url("/to-internal"));
  EXPECT_EQ(refused.status(), 400);
  EXPECT_EQ(refused.code(), "media_url_refused") << refused.what();
  EXPECT_NE(std::string(refused.what()).find("the host the URL redirects to is a loopback"), std::string::npos)
      << refused.what();
  expect_no_echo(refused);
  EXPECT_EQ(internal_.hits(), 0);
  const ApiError ftp = load_error(source, url("/to-ftp"));
  EXPECT_EQ(ftp.code(), "invalid_media_url");
  EXPECT_NE(std::string(ftp.what()).find("redirects to a URL that has a scheme other than http"), std::string::npos)
      << ftp.what();
  expect_no_echo(ftp);
}

TEST_F(ServerMediaRedirects, RedirectsAreFollowedHereAndFailuresLookAlike) {
  const MediaSource source(remote_options({"127.0.0.2"}));
  EXPECT_EQ(source.load(url("/dir/relative"), "image", 1 << 20), png_);
  EXPECT_EQ(source.load(url("/absolute-path"), "image", 1 << 20), png_);
  const ApiError missing = load_error(source, url("/missing"));
  const ApiError loop = load_error(source, url("/loop"));
  const ApiError closed = load_error(source, "http://127.0.0.2:1/image.png");  // nothing listens there
  for (const ApiError* error : {&missing, &loop, &closed}) {
    EXPECT_EQ(error->code(), "media_fetch_failed") << error->what();
    EXPECT_NE(std::string(error->what()).find("could not fetch http://127.0.0.2:"), std::string::npos)
        << error->what();
    expect_no_echo(*error);
  }
  // Without the opt-in the site is refused like any loopback address.
  EXPECT_EQ(load_error(MediaSource(remote_options()), url("/image.png")).code(), "media_url_refused");
}

TEST_F(ServerMediaRedirects, PerRequestFetchByteAndTimeBudgets) {
  const MediaSource source(remote_options({"127.0.0.2"}));
  MediaBudget three_fetches(30.0, size_t{1} << 30, 3);
  EXPECT_EQ(source.load(url("/dir/relative"), "image", 1 << 20, three_fetches), png_);  // two connections
  EXPECT_EQ(load_error(source, url("/dir/relative"), &three_fetches).code(), "too_many_media_fetches");
  MediaBudget small(30.0, png_.size() - 1, 10);
  EXPECT_EQ(load_error(source, url("/image.png"), &small).code(), "media_fetch_failed");
  MediaBudget expired(0.0, size_t{1} << 30, 10);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(load_error(source, url("/image.png"), &expired).code(), "media_timeout");
}

TEST_F(ServerMediaRedirects, DomainAllowList) {
  ServerOptions options = remote_options({"127.0.0.2"});
  options.allowed_media_domains = {"127.0.0.2", "Media.Example"};
  const MediaSource source(options);
  EXPECT_EQ(source.load(url("/image.png"), "image", 1 << 20), png_);
  // Refused by name before the name is resolved.
  const ApiError other = load_error(source, "http://localhost:" + std::to_string(internal_.port()) + "/secret");
  EXPECT_EQ(other.code(), "media_url_refused");
  EXPECT_NE(std::string(other.what()).find("--allowed-media-domains"), std::string::npos) << other.what();
  EXPECT_EQ(internal_.hits(), 0);
}

TEST(ServerMediaLimits, ChatRequestsWithInternalUrlsAreRefused) {
  ServerOptions options;
  options.allow_remote_media = true;
  testing::ServerHarness server(options);
  for (const std::string url : {"http://10.0.0.1/cat.png", "http://169.254.169.254/latest/meta-data/iam",
                                "http://localhost:1/cat.png"}) {
    const json body = {{"messages", json::array({testing::user_message("what?", {url})})}, {"max_tokens", 1}};
    auto result = server.chat(body);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 400) << result->body;
    const json error = testing::error_of(result);
    EXPECT_EQ(error["code"], "media_url_refused") << result->body;
    EXPECT_EQ(error["param"], "messages[0].content[0]") << result->body;
  }
}

json video_request(const json& part) {
  return {{"messages", json::array({{{"role", "user"}, {"content", json::array({part, {{"type", "text"}, {"text", "?"}}})}}})},
          {"max_tokens", 1},
          {"temperature", 0}};
}

TEST(ServerMediaLimits, VideoFrameCountsOverTheProcessorsLimitAreRefused) {
  testing::ServerHarness server;
  const std::string mp4 =
      testing::data_url(testing::read_file(testing::fixtures_dir() + "/videos/cfr24_3s.mp4"), "video/mp4");
  for (const char* field : {"max_frames", "nframes", "min_frames"}) {
    json part = {{"type", "video_url"}, {"video_url", {{"url", mp4}}}, {field, 100000}};
    auto result = server.chat(video_request(part));
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 400) << result->body;
    const json error = testing::error_of(result);
    EXPECT_EQ(error["param"], std::string("messages[0].content[0].") + field) << result->body;
    EXPECT_NE(error["message"].get<std::string>().find("100000 frames is over this model's limit of 768"),
              std::string::npos)
        << result->body;
  }
  // A frame list of remote-looking URLs over the limit is refused before any of them is fetched.
  json frames = json::array();
  for (int i = 0; i < 769; ++i) frames.push_back("http://10.0.0.1/" + std::to_string(i) + ".png");
  auto many = server.chat(video_request({{"type", "video"}, {"video", frames}}));
  ASSERT_TRUE(many);
  EXPECT_EQ(many->status, 400) << many->body;
  EXPECT_NE(testing::error_of(many)["message"].get<std::string>().find("769 frames; at most 768"),
            std::string::npos)
      << many->body;
  // Within the limits, the highest fps samples at most the video's own frames.
  auto fast = server.chat(video_request({{"type", "video_url"}, {"video_url", {{"url", mp4}}}, {"fps", 240}}));
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->status, 200) << fast->body;
  EXPECT_LE(json::parse(fast->body)["videos"][0]["frames"].get<int>(), 72) << fast->body;
}

TEST(ServerMediaLimits, MediaPastTheDeadlineIsRefused) {
  ServerOptions options;
  options.media_timeout_s = 1e-6;
  testing::ServerHarness server(options);
  const std::string mp4 =
      testing::data_url(testing::read_file(testing::fixtures_dir() + "/videos/cfr24_3s.mp4"), "video/mp4");
  auto result = server.chat(video_request({{"type", "video_url"}, {"video_url", {{"url", mp4}}}}));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 400) << result->body;
  EXPECT_EQ(testing::error_of(result)["code"], "media_timeout") << result->body;
}

TEST(ServerMediaLimits, LocalFilesAreRegularFilesInsideTheFolder) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.file("media"));
  const std::string png = testing::read_file(testing::image_fixture("shapes_70x50.png"));
  testing::write_file(dir.file("media/a.png"), png);
  testing::write_file(dir.file("outside.png"), png);
  std::filesystem::create_symlink(dir.file("outside.png"), dir.file("media/link.png"));
  ASSERT_EQ(mkfifo(dir.file("media/pipe.png").c_str(), 0600), 0);
  ServerOptions options;
  options.allowed_media_dir = dir.file("media");
  const MediaSource source(options);
  EXPECT_EQ(source.load(dir.file("media/a.png"), "image", 1 << 20), png);
  EXPECT_EQ(source.load("file://localhost" + dir.file("media/a.png"), "image", 1 << 20), png);
  for (const std::string& refused : {dir.file("media/link.png"), dir.file("media/pipe.png"), dir.file("media")})
    EXPECT_EQ(load_error(source, refused).code(), "media_not_found") << refused;
  EXPECT_EQ(load_error(source, "file://host" + dir.file("media/a.png")).code(), "invalid_media_url");
  // Bytes read from files count against the request's budget.
  MediaBudget one_file(30.0, png.size() + 10, 10);
  EXPECT_EQ(source.load(dir.file("media/a.png"), "image", 1 << 20, one_file), png);
  EXPECT_EQ(load_error(source, dir.file("media/a.png"), &one_file).status(), 413);
  // "/" allows every absolute path (it allowed none before).
  options.allowed_media_dir = "/";
  EXPECT_EQ(MediaSource(options).load(dir.file("outside.png"), "image", 1 << 20), png);
  // A folder that does not exist is a setup error, not a silently disabled feature.
  options.allowed_media_dir = dir.file("nope");
  try {
    MediaSource missing(options);
    ADD_FAILURE() << "a missing --allowed-media-dir was accepted";
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), "--allowed-media-dir: " + dir.file("nope") + ": no such folder");
  }
}

TEST(ServerMediaLimits, CliRefusesBadMediaSetups) {
  const std::string serve = "serve -m " + testing::tiny_model_dir() + " --port 0 ";
  const auto missing = testing::run_cli(serve + "--allowed-media-dir /nonexistent/media");
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("error: --allowed-media-dir: /nonexistent/media: no such folder"), std::string::npos)
      << missing.output;
  const auto range = testing::run_cli(serve + "--allow-remote-media --allow-media-address 10.0.0.0/99");
  EXPECT_EQ(range.exit_code, 1) << range.output;
  EXPECT_NE(range.output.find("error: --allow-media-address: \"10.0.0.0/99\" has a bad prefix length"),
            std::string::npos)
      << range.output;
  const auto help = testing::run_cli("serve --help");
  for (const char* flag : {"--allowed-media-domains", "--allow-media-address", "--max-media-bytes",
                           "--max-media-fetches", "--media-timeout"})
    EXPECT_NE(help.output.find(flag), std::string::npos) << flag;
}

}  // namespace
}  // namespace qwen3vl
