// Grounding: turns the boxes and points a Qwen3-VL reply contains into structured data on the original image.
//
// Qwen3-VL writes coordinates as JSON on a 0..1000 grid RELATIVE to the original image, whatever the image was
// resized to (QwenLM/Qwen3-VL issues #1427, #1486): {"bbox_2d": [x1, y1, x2, y2], "label": ...} and
// {"point_2d": [x, y], "label": ...}, x horizontal, y vertical, top-left origin, usually as a list inside a ```json
// fence. Pixels are X = x / 1000 * W, Y = y / 1000 * H, as the official spatial-understanding cookbook computes them.
// Some docs say 0..999; values are clamped to [0, 1000] before mapping, so pixels always lie inside the image.
//
// Qwen2.5-VL wrote absolute pixels of the resized image instead. That is NOT supported: every value is read as
// relative, and a value above 1000 (the usual sign of a 2.5-VL style reply) is clamped and reported as a warning.
//
// The parser never throws on the reply: malformed or odd pieces are skipped and, when they mention bbox_2d or
// point_2d, reported in `warnings`. Text without any grounding gives an empty result and no warnings.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qwen3vl {

struct GroundingItem {
  enum class Kind { Box, Point } kind = Kind::Box;
  std::string label;                 // "" when absent (or not a string; then it stays in extra_json)
  std::vector<double> relative;      // as in the reply: [x1,y1,x2,y2] or [x,y] (0..1000 grid), not clamped
  std::vector<double> pixels;        // mapped to the original image: same layout, in pixels (clamped to the image).
                                     // Kept as doubles; callers round if they want integers.
  std::string extra_json = "{}";     // other keys of the object as a JSON object text ("{}" if none)
  int image_index = 0;               // which image it refers to (0 unless a caller assigns)
};

struct GroundingResult {
  std::vector<GroundingItem> items;    // in reply order
  std::vector<std::string> warnings;   // one line each: what was skipped or clamped, and where (byte offset)
};

// Parses every bbox_2d / point_2d object in `reply` and maps it onto an image of width x height pixels.
// Accepts: a list or a single object, with or without ```json fences, several fences, text around them, objects
// nested under other keys, trailing commas, integer or float numbers, and a reply cut off mid-object (every
// complete object before the cut is kept). For a thinking model's reply only the text after the last "</think>"
// is read, so draft boxes in the reasoning are not returned.
// Skipped with a warning: a bbox_2d without exactly 4 numbers, a point_2d without exactly 2, non-finite numbers,
// malformed or truncated objects that mention bbox_2d / point_2d.
// Throws qwen3vl::Error only when image_width or image_height is not positive (a caller error).
GroundingResult parse_grounding(const std::string& reply, int64_t image_width, int64_t image_height);

// JSON text of a result (for the CLI and the server), one entry per item in order:
//   {"type":"box","label":...,"bbox_2d":[...],"bbox_pixels":[...],"image_index":0,"extra":{...}}
//   {"type":"point","label":...,"point_2d":[...],"point_pixels":[...],"image_index":0,"extra":{...}}
// Integral values print as integers, others in shortest round-trip form. Warnings are not part of it.
std::string grounding_to_json(const GroundingResult& result);

}  // namespace qwen3vl
