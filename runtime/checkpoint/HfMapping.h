// Moving parameters between the plan's layout and the Hugging Face reference model's tensors
// (spec 5.2), driven by each plan parameter's hf_name and hf_layout.
#pragma once

#include "runtime/checkpoint/Safetensors.h"
#include "ttt/schema/plan_generated.h"

#include <string>
#include <vector>

namespace ttt::checkpoint {
// The HF shape of a tensor of our shape `ours` under `layout`; "" or an error (wrong rank):
//   same        identical
//   transpose   ours [in, out]          -> HF [out, in]
//   conv        ours [width, channels]  -> HF [channels, 1, width]
//   unsqueeze1  ours [H, ...]           -> HF [H, 1, ...]
std::string hfShape(const std::vector<int64_t> &ours, plan::HfLayout layout,
                    std::vector<int64_t> &hf);

// Reorders the elements of one tensor between our layout and HF's. `ours` is our shape in both
// directions; src and dst hold its element count and must not alias.
void toHfLayout(plan::HfLayout layout, const std::vector<int64_t> &ours, const double *src,
                double *dst);
void toHfLayout(plan::HfLayout layout, const std::vector<int64_t> &ours, const float *src,
                float *dst);
void fromHfLayout(plan::HfLayout layout, const std::vector<int64_t> &ours, const double *src,
                  double *dst);
void fromHfLayout(plan::HfLayout layout, const std::vector<int64_t> &ours, const float *src,
                  float *dst);

// One tensor per plan parameter with a HF name, converted to `fileDtype` (F64, F32 or BF16).
// `values[i]` holds parameter i of the plan's table in our layout. A tied lm_head is left out (as
// save_pretrained does). Metadata {"format": "pt"} is set, which transformers requires.
std::string exportHf(const plan::Plan &plan, const std::vector<std::vector<double>> &values,
                     DType fileDtype, SafetensorsFile &out);
std::string exportHf(const plan::Plan &plan, const std::vector<std::vector<float>> &values,
                     DType fileDtype, SafetensorsFile &out);

struct HfImportOptions {
  // Tensors the plan does not know are an error unless allowed; either way they are listed.
  bool allowUnexpected = false;
};
struct HfImportReport {
  std::vector<std::string> unexpected; // names of tensors the plan does not use
  bool tiedLmHeadChecked = false;      // lm_head.weight was present and equal to the embedding
};

// Fills values[i] (our layout) for every plan parameter from `file`: every expected HF name
// present with the right shape and a float dtype (F64/F32/BF16, converted to the output type),
// no unexpected tensor (unless allowed). With tied embeddings `lm_head.weight` may be present and
// must then equal `model.embed_tokens.weight`. `fileName` is used in messages. "" or one line.
std::string importHf(const plan::Plan &plan, const SafetensorsFile &file,
                     const std::string &fileName, std::vector<std::vector<double>> &values,
                     const HfImportOptions &options = {}, HfImportReport *report = nullptr);
std::string importHf(const plan::Plan &plan, const SafetensorsFile &file,
                     const std::string &fileName, std::vector<std::vector<float>> &values,
                     const HfImportOptions &options = {}, HfImportReport *report = nullptr);

constexpr const char *kHfEmbeddingName = "model.embed_tokens.weight";
constexpr const char *kHfLmHeadName = "lm_head.weight";
} // namespace ttt::checkpoint
