"""Make colpali-engine importable without torchvision (PyPI torchvision would replace our torch build).

colpali-engine imports `smart_resize` from transformers' torchvision-backed Qwen2-VL image processor
module. When torchvision is absent, register that module name as an alias of the PIL implementation
(same `smart_resize`, `Qwen2VLImageProcessor` → `Qwen2VLImageProcessorPil`) before colpali is imported.
"""

import importlib.util
import sys
import types

_MODULE = "transformers.models.qwen2_vl.image_processing_qwen2_vl"


def ensure_colpali_importable() -> None:
    if importlib.util.find_spec("torchvision") is not None or _MODULE in sys.modules:
        return
    from transformers.models.qwen2_vl import image_processing_pil_qwen2_vl as pil

    shim = types.ModuleType(_MODULE)
    shim.smart_resize = pil.smart_resize
    shim.Qwen2VLImageProcessor = pil.Qwen2VLImageProcessorPil
    shim.__doc__ = "Alias of image_processing_pil_qwen2_vl (torchvision is not installed)."
    sys.modules[_MODULE] = shim
